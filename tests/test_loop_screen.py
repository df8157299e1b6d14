"""screen_new_lfs: a round's LLM LFs join one at a time, only when cross-fitted seed accuracy holds;
its trials never write the user's pins."""
from types import SimpleNamespace

from lfagent.agent.rounds import screen_new_lfs


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

    def __init__(self, names, gain, unselectable=(), user_pins=None):
        self.store = FakeStore(names)
        self.store.pins.update(user_pins or {})
        self.gain, self.unselectable = gain, set(unselectable)
        self.fits = 0

    def user_pins(self):
        return {n: pin for n, pin in self.store.pins.items() if pin}

    def pins(self):
        return {**{n: "drop" for n in self.store.meta.get("screened_out", {})}, **self.user_pins()}

    def fit(self, *, pins=None, record=True):
        self.fits += 1
        pins = self.pins() if pins is None else pins
        active = frozenset(n for n in self.store.pins if pins.get(n) != "drop" and n not in self.unselectable)
        self.result = SimpleNamespace(final=SimpleNamespace(lfs=[SimpleNamespace(name=n) for n in active]))
        return SimpleNamespace(seed_accuracy=0.80 + self.gain(active))


def test_helpful_lfs_stay_harmful_ones_are_screened_out_with_a_reason():
    def gain(active):
        g = 0.02 * ("a" in active) + 0.01 * ("b" in active) - 0.01 * ("d" in active)
        return g - 0.04 * ({"a", "b"} <= active)  # b helps alone, hurts next to a

    session = FakeSession(["a", "b", "c", "d", "e"], gain, unselectable={"c"})
    dropped = screen_new_lfs(session, ["a", "b", "c", "d", "e"])
    assert sorted(dropped) == ["b", "d"]  # c is left to selection, e ties and stays (coverage for free)
    assert all(pin is None for pin in session.store.pins.values())  # no user pin written
    assert session.pins() == {"b": "drop", "d": "drop"}
    reasons = session.store.meta["screened_out"]
    assert set(reasons) == {"b", "d"} and "0.820 -> 0.790" in reasons["b"]
    assert session.fit().seed_accuracy >= 0.80 + 0.02 - 1e-9


def test_the_users_pins_are_neither_screened_nor_overwritten():
    def gain(active):
        return -0.05 * ("mine" in active) + 0.02 * ("a" in active)

    session = FakeSession(["mine", "a"], gain, user_pins={"mine": "keep"})
    assert screen_new_lfs(session, ["mine", "a"]) == []
    assert session.store.pins == {"mine": "keep", "a": None}


def test_a_kill_mid_screen_leaves_the_store_as_it_was():
    session = FakeSession(["a", "b"], lambda active: 0.01 * len(active), user_pins={"b": "drop"})
    real_fit = session.fit

    def dying_fit(**kwargs):
        if session.fits == 1:
            raise KeyboardInterrupt
        return real_fit(**kwargs)

    session.fit = dying_fit
    try:
        screen_new_lfs(session, ["a"])
    except KeyboardInterrupt:
        pass
    assert session.store.pins == {"a": None, "b": "drop"} and "screened_out" not in session.store.meta


def test_no_new_lfs_costs_no_fit():
    session = FakeSession([], lambda active: 0.0)
    assert screen_new_lfs(session, []) == [] and session.fits == 0
