"""screen_new_lfs: a round's LLM LFs join one at a time, only when cross-fitted seed accuracy holds."""
from types import SimpleNamespace

from lfagent.loop import screen_new_lfs


class FakeStore:
    def __init__(self, names):
        self.pins = {name: None for name in names}
        self.meta, self.events = {}, []

    def pin(self, name, pinned):
        self.pins[name] = pinned

    def get_meta(self, key, default=None):
        return self.meta.get(key, default)

    def set_meta(self, key, value):
        self.meta[key] = value

    def event(self, kind, data):
        self.events.append((kind, data))


class FakeSession:
    """Accuracy = 0.80 + the gains of the LFs in play; selection never keeps `unselectable`."""

    def __init__(self, names, gain, unselectable=()):
        self.store = FakeStore(names)
        self.gain, self.unselectable = gain, set(unselectable)
        self.fits = 0

    def fit(self):
        self.fits += 1
        active = frozenset(n for n, pin in self.store.pins.items() if pin != "drop" and n not in self.unselectable)
        self.result = SimpleNamespace(final=SimpleNamespace(lfs=[SimpleNamespace(name=n) for n in active]))
        return SimpleNamespace(seed_accuracy=0.80 + self.gain(active))


def test_helpful_lfs_stay_harmful_ones_are_pinned_with_a_reason():
    def gain(active):
        g = 0.02 * ("a" in active) + 0.01 * ("b" in active) - 0.01 * ("d" in active)
        return g - 0.04 * ({"a", "b"} <= active)  # b helps alone, hurts next to a

    session = FakeSession(["a", "b", "c", "d", "e"], gain, unselectable={"c"})
    dropped = screen_new_lfs(session, ["a", "b", "c", "d", "e"])
    pins = session.store.pins
    assert pins == {"a": None, "b": "drop", "c": None, "d": "drop", "e": None}
    assert sorted(dropped) == ["b", "d"]  # c is left to selection, e ties and stays (coverage for free)
    reasons = session.store.meta["screened_out"]
    assert set(reasons) == {"b", "d"} and "0.820 -> 0.790" in reasons["b"]
    assert session.fit().seed_accuracy >= 0.80 + 0.02 - 1e-9


def test_no_new_lfs_costs_no_fit():
    session = FakeSession([], lambda active: 0.0)
    assert screen_new_lfs(session, []) == [] and session.fits == 0
