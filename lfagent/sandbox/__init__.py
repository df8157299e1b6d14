"""Run untrusted (LLM-written) code LFs behind OS isolation, fast and in batches.

- lint.py:    AST lint with readable rejections (a lint, not the boundary)
- isolate.py: the OS layers (network namespace, rlimits, unprivileged uid, Landlock, seccomp)
- worker.py:  the isolated worker process; pool.py: the pool the host talks to
- loader.py:  load_code_lf(path) for .py LF files
"""
from lfagent.sandbox.lint import check_code_lf, lint_problems
from lfagent.sandbox.loader import load_code_lf
from lfagent.sandbox.pool import ApplyResult, SandboxError, SandboxPool, apply_code_lfs, sandbox_layers

__all__ = ["ApplyResult", "SandboxError", "SandboxPool", "apply_code_lfs", "check_code_lf", "lint_problems",
           "load_code_lf", "sandbox_layers"]
