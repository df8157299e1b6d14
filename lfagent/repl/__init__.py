"""`lfagent repl`: an interactive session over `lfagent.Session` (commands.py parses and dispatches,
render.py draws tables, app.py runs the prompt)."""
from lfagent.repl.commands import COMMANDS, Outcome, Shell, UsageError, parse_line

__all__ = ["COMMANDS", "Outcome", "Shell", "UsageError", "parse_line"]
