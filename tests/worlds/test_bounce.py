"""The bounce world: spec of every step, determinism, physics sanity, sound, touch, gt contract, rendering."""

from __future__ import annotations

import numpy as np
import pytest

from genworld.spec import SpecError
from genworld.worlds import make_world, registered_worlds
from genworld.worlds.bounce import GT_COLUMNS, BounceWorld, render_objects, world_from_spec_config

ZERO = np.zeros(2, np.float32)
VIDEO, AUDIO, TOUCH = "observation.images.top", "observation.audio.mic", "observation.tactile.ring"


def rollout(world: BounceWorld, seed: int, steps: int, policy: str = "seek") -> list[dict[str, np.ndarray]]:
    """o_0 .. o_steps with the actions a_t stored in each step, as collect records them."""
    obs = world.reset(seed)
    pol = world.policy(policy, np.random.default_rng(seed))
    out = []
    for _ in range(steps):
        act = pol(obs)
        nxt, reward, done = world.step(act)
        out.append({**obs, "action": act, "next.reward": reward, "next.done": done})
        obs = nxt
    return out


def table(world: BounceWorld, rows: list[tuple[float, ...]]) -> np.ndarray:
    """A gt.objects table from (x, y, vx, vy, radius, mass, colour_id, material_id) rows; row 0 the agent."""
    t = np.zeros((world.k, len(GT_COLUMNS)), np.float32)
    for i, (x, y, vx, vy, r, m, c, mat) in enumerate(rows):
        t[i] = (x, y, vx, vy, r, m, c, 1, 1, mat)
    return t


def kinetic(world: BounceWorld) -> float:
    b = world.bodies
    return float(0.5 * (b.mass * (b.vel**2).sum(1))[b.exists].sum())


@pytest.mark.parametrize("name,overrides", [
    ("bounce", {}),
    ("bounce", {"action_mode": "discrete", "occluder": True, "n_objects": 5}),
    ("bounce-gravity", {"n_objects": 2}),
])
def test_every_step_matches_the_spec(name: str, overrides: dict) -> None:
    world = make_world(name, **overrides)
    assert set(world.spec.keys()) == {VIDEO, AUDIO, TOUCH, "observation.state", "gt.objects", "gt.contacts",
                                      "action", "next.reward", "next.done"}
    assert world.spec["gt.objects"].names == GT_COLUMNS
    assert world.spec["observation.state"].names == ("x", "y", "vx", "vy")
    for t, step in enumerate(rollout(world, 0, 40, "mixed")):
        checked = world.spec.check_step(step, where=f"step {t}")
        for key, value in step.items():
            if key not in ("next.reward", "next.done"):  # step() returns those as Python scalars
                assert np.asarray(value).dtype == checked[key].dtype, key
    cfg = world.spec.config
    for key in ("palette", "background", "occluder", "gravity", "restitution", "friction", "image_size"):
        assert key in cfg


def test_same_seed_same_episode_and_other_seed_differs() -> None:
    a = rollout(make_world("bounce"), 7, 60, "mixed")
    b = rollout(make_world("bounce"), 7, 60, "mixed")
    c = rollout(make_world("bounce"), 8, 60, "mixed")
    for sa, sb in zip(a, b):
        for key in sa:
            np.testing.assert_array_equal(sa[key], sb[key], err_msg=key)
    assert not np.array_equal(a[0]["gt.objects"], c[0]["gt.objects"])


def test_energy_does_not_grow_without_actions_when_elastic_and_frictionless() -> None:
    world = make_world("bounce", restitution=1.0, friction=0.0, drag=0.0, n_objects=5, init_speed=2.0)
    world.reset(1)
    world.bodies.vel[0] = (1.5, -1.0)  # the agent coasts too
    e0, n_contacts, energies = kinetic(world), 0, []
    for _ in range(1500):
        obs, _, _ = world.step(ZERO)
        energies.append(kinetic(world))
        n_contacts += int(obs["gt.contacts"].any())
    assert n_contacts > 50, "the test needs collisions to mean anything"
    assert max(energies) <= e0 * (1 + 1e-9)
    assert min(energies) > 0.5 * e0  # elastic: only the speed limit may take energy out


@pytest.mark.parametrize("restitution", [1.0, None])
def test_free_collisions_conserve_momentum(restitution: float | None) -> None:
    world = make_world("bounce", n_objects=2, drag=0.0, friction=0.0, restitution=restitution)
    world.reset(0)
    world.set_state(world.state_from_gt(table(world, [
        (5, 5, 0, 0, 5, 2, 0, 4), (20, 34, 4.5, 0.4, 4, 0.6, 1, 0), (40, 32, -2.0, 0, 6, 2.9, 6, 1)])))
    b = world.bodies
    assert 4.5 > world.cfg.max_speed  # objects are not held to the agent's top speed
    p0, e0 = (b.mass[1:3, None] * b.vel[1:3]).sum(0), kinetic(world)
    for _ in range(8):
        obs, _, _ = world.step(ZERO)
        if obs["gt.contacts"][1, 2] > 0:
            break
        assert b.vel[1, 0] == pytest.approx(4.5)
    else:
        pytest.fail("the two objects never met")
    np.testing.assert_allclose((b.mass[1:3, None] * b.vel[1:3]).sum(0), p0, atol=1e-9)
    if restitution == 1.0:
        assert kinetic(world) == pytest.approx(e0, rel=1e-9)
    else:
        assert kinetic(world) < e0


def test_discs_never_overlap_nor_leave_the_arena() -> None:
    world = make_world("bounce", n_objects=5)
    for seed in (0, 1):
        for step in rollout(world, seed, 800, "seek"):
            g = step["gt.objects"][step["gt.objects"][:, 8] > 0]
            p, r = g[:, :2], g[:, 4]
            dist = np.hypot(*(p[:, None] - p[None]).transpose(2, 0, 1))
            overlap = (r[:, None] + r[None] - dist)[np.triu_indices(len(g), 1)]
            assert overlap.max() < 0.1, f"discs overlap by {overlap.max():.3f} px"
            assert (p - r[:, None] >= -1e-3).all() and (p + r[:, None] <= 64 + 1e-3).all()


def test_contacts_make_sound_and_touch_and_silence_needs_no_contact() -> None:
    world = make_world("bounce", n_objects=4)
    steps = rollout(world, 3, 400, "seek")
    since_contact, heard, felt = 10**6, 0, 0
    for step in steps[1:]:
        contacts, audio, ring = step["gt.contacts"], step[AUDIO], step[TOUCH]
        since_contact = 0 if contacts.any() else since_contact + 1
        if audio.any():
            assert since_contact < 25, "sound long after the last contact"
            heard += 1
        # the touch ring holds exactly the agent's contacts
        np.testing.assert_allclose(ring.sum(), contacts[0].sum(), rtol=1e-5, atol=1e-6)
        felt += int(ring.sum() > 0)
    assert heard > 20 and felt > 10
    still = make_world("bounce", init_speed=0.0)
    still.reset(0)
    for _ in range(30):
        obs, _, _ = still.step(ZERO)
        assert not obs["gt.contacts"].any() and not obs[AUDIO].any() and not obs[TOUCH].any()


def test_one_impact_rings_then_the_tail_decays_to_silence() -> None:
    world = make_world("bounce", n_objects=2, drag=0.0)
    world.reset(0)
    world.set_state(world.state_from_gt(table(world, [
        (10, 32, -3, 0, 5, 2, 0, 4), (40, 10, 0, 0, 4, 1, 1, 0), (40, 50, 0, 0, 4, 1, 2, 1)])))
    world.step(ZERO)
    obs, _, _ = world.step(ZERO)  # the agent reaches the left wall
    assert obs["gt.contacts"][0, -1] > 0 and obs[AUDIO].any()
    assert obs[TOUCH][4] > 0 and obs[TOUCH].sum() == obs[TOUCH][4]  # sector 4 faces -x
    world.bodies.vel[:] = 0.0  # nothing else will touch
    energy = [float(np.square(world.step(ZERO)[0][AUDIO]).sum()) for _ in range(30)]
    assert all(b <= a for a, b in zip(energy, energy[1:])) and energy[-1] == 0.0


@pytest.mark.parametrize("offset,sector", [((12, 0), 0), ((0, 12), 2), ((-12, 0), 4), ((0, -12), 6),
                                           ((-8.5, -8.5), 5)])
def test_touch_sector_faces_the_contact(offset: tuple[float, float], sector: int) -> None:
    world = make_world("bounce", n_objects=1)
    world.reset(0)
    ox, oy = offset
    speed = 2.0 / np.hypot(ox, oy)
    world.set_state(world.state_from_gt(table(world, [
        (32, 32, 0, 0, 5, 2, 0, 4), (32 + ox, 32 + oy, -ox * speed, -oy * speed, 5, 1, 1, 0)])))
    ring = sum(world.step(ZERO)[0][TOUCH] for _ in range(3))
    assert ring.argmax() == sector and ring[sector] > 0
    assert ring.sum() == pytest.approx(ring[sector])


def test_occluder_hides_what_is_under_it() -> None:
    world = make_world("bounce", occluder=True, n_objects=2)
    world.reset(0)
    x0, y0, x1, y1 = world.spec.config["occluder"]
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    world.set_state(world.state_from_gt(table(world, [
        (6, 6, 0, 0, 5, 2, 0, 4), (cx, cy, 0, 0, 4, 1, 1, 0), (x1 + 2, 56, 0, 0, 5, 1, 2, 1)])))
    obs, _, _ = world.step(ZERO)
    g, frame, palette = obs["gt.objects"], obs[VIDEO], world.spec.config["palette"]
    assert g[1, 7] == 0 and g[0, 7] == 1 and g[2, 7] == 1  # hidden / visible / half under: visible
    assert tuple(frame[int(cy), int(cx)]) == tuple(palette[world.spec.config["occluder_colour_id"]])
    assert tuple(frame[56, x1 + 3]) == tuple(palette[2])


def test_gravity_variant_falls_and_comes_to_rest() -> None:
    world = make_world("bounce-gravity", n_objects=3)
    assert world.spec.config["gravity"] > 0
    obs = world.reset(2)
    y0 = obs["gt.objects"][1:4, 1].copy()
    for _ in range(8):
        obs, _, _ = world.step(ZERO)
    assert (obs["gt.objects"][1:4, 1] > y0).all()
    for _ in range(400):
        obs, _, _ = world.step(ZERO)
    g = obs["gt.objects"][1:4]
    assert np.abs(g[:, 3]).max() < 0.5  # settled
    quiet = [world.step(ZERO)[0][AUDIO] for _ in range(20)]
    assert not np.any(quiet), "resting contacts must not make sound"


def test_discrete_actions_push_the_agent_the_named_way() -> None:
    world = make_world("bounce", action_mode="discrete", n_objects=2)
    act = world.spec.action
    assert act.discrete and act.shape == () and act.names[:5] == ("none", "up", "down", "left", "right")
    for name, axis, sign in (("right", 0, 1), ("up", 1, -1), ("down-left", 0, -1)):
        world.reset(0)
        world.bodies.vel[:] = 0.0
        world.bodies.pos[1:] = ((50, 50), (55, 10), (0, 0), (0, 0), (0, 0))[: world.k - 1]
        world.bodies.pos[0] = (20, 32)
        obs, _, _ = world.step(np.asarray(act.names.index(name)))
        assert np.sign(obs["observation.state"][2 + axis]) == sign, name
    with pytest.raises(SpecError, match="discrete action"):
        world.step(np.asarray(9))
    with pytest.raises(SpecError, match="continuous action"):
        continuous = make_world("bounce")
        continuous.reset(0)
        continuous.step(np.zeros(3))


def test_gt_contract_matches_the_rendered_frame() -> None:
    world = make_world("bounce", n_objects=3, occluder=True)
    palette, k = np.asarray(world.spec.config["palette"]), world.k
    assert k == 1 + world.cfg.max_objects
    for step in rollout(world, 5, 200, "mixed"):
        g, frame = step["gt.objects"], step[VIDEO]
        assert g.shape == (k, 10) and step["gt.contacts"].shape == (k, k + 1)
        np.testing.assert_array_equal(step["gt.contacts"][:, :k], step["gt.contacts"][:, :k].T)
        assert g[0, 6] == world.spec.config["agent_colour_id"] and g[0, 8] == 1
        assert (g[4:, 8] == 0).all() and not g[4:].any()  # absent rows
        np.testing.assert_allclose(step["observation.state"], g[0, :4])
        for row in g[g[:, 7] > 0]:
            x, y = int(row[0]), int(row[1])
            on_occluder = _inside(world.spec.config["occluder"], x + 0.5, y + 0.5)
            if not on_occluder:
                np.testing.assert_array_equal(frame[y, x], palette[int(row[6])])
        np.testing.assert_array_equal(render_objects(g, world.spec.config), frame)


def _inside(rect: list[int] | None, x: float, y: float) -> bool:
    return rect is not None and rect[0] <= x < rect[2] and rect[1] <= y < rect[3]


def test_get_and_set_state_replay_exactly() -> None:
    world = make_world("bounce")
    steps = rollout(world, 4, 30, "seek")
    state = world.get_state()
    acts = np.random.default_rng(0).uniform(-1, 1, (25, 2)).astype(np.float32)
    first = [world.step(a)[0] for a in acts]
    world.set_state(state)
    for a, ref in zip(acts, first):
        obs = world.step(a)[0]
        for key in ref:
            np.testing.assert_array_equal(obs[key], ref[key], err_msg=key)
    rebuilt = world.state_from_gt(steps[-1])
    np.testing.assert_allclose(rebuilt["bodies"].pos, steps[-1]["gt.objects"][:, :2])
    with pytest.raises(ValueError, match="gt.objects has shape"):
        world.state_from_gt(np.zeros((3, 10)))
    with pytest.raises(ValueError, match="NaN"):
        world.state_from_gt(np.full((world.k, 10), np.nan))


def test_config_overrides_from_strings_and_bad_ones_are_named() -> None:
    world = make_world("bounce", n_objects="4", occluder="true", restitution="none", friction="0", fps="10",
                       sample_rate="16000")
    assert world.cfg.n_objects == 4 and world.cfg.occluder is True and world.cfg.restitution is None
    assert world.cfg.friction == 0.0 and world.spec["observation.audio.mic"].shape == (1600,)
    assert world.spec.config["occluder"] == list(world.cfg.occluder_rect)  # the spec records the bar it draws
    with pytest.raises(ValueError, match="unknown config keys"):
        make_world("bounce", colour="red")
    with pytest.raises(ValueError, match="cannot read n_objects"):
        make_world("bounce", n_objects="many")
    with pytest.raises(ValueError, match="n_objects"):
        make_world("bounce", n_objects=9)
    with pytest.raises(ValueError, match="n_objects_min"):
        make_world("bounce", n_objects_min=4, n_objects=3)
    varied = make_world("bounce", n_objects_min="2", n_objects="5")
    counts = {int(varied.reset(seed)["gt.objects"][:, 8].sum()) - 1 for seed in range(40)}
    assert counts == {2, 3, 4, 5}
    with pytest.raises(ValueError, match="action_mode"):
        make_world("bounce", action_mode="joystick")


def test_policies_are_registered_deterministic_and_seek_finds_contacts() -> None:
    entry = registered_worlds()["bounce"]
    assert set(entry.policies) == {"random", "persistent", "seek", "mixed"}
    world = make_world("bounce")
    with pytest.raises(ValueError, match="unknown policy"):
        world.policy("dance", np.random.default_rng(0))
    touches = {}
    for name in ("random", "persistent", "seek"):
        a = rollout(world, 0, 150, name)
        b = rollout(world, 0, 150, name)
        np.testing.assert_array_equal(np.stack([s["action"] for s in a]), np.stack([s["action"] for s in b]))
        touches[name] = sum(int(s["gt.contacts"][0, 1:-1].any()) for s in a)
    assert touches["seek"] > touches["random"] and touches["seek"] >= 10


def test_world_rebuilds_from_its_spec_config() -> None:
    import json

    world = make_world("bounce-gravity", occluder=True, n_objects=4, friction=0.0)
    config = json.loads(json.dumps(world.spec.to_json()))["config"]  # as a dataset stores it
    again = world_from_spec_config(config, "bounce-gravity")
    assert again.cfg == world.cfg and again.spec.to_json() == world.spec.to_json()
    a, b = rollout(world, 3, 20), rollout(again, 3, 20)
    np.testing.assert_array_equal(a[-1][VIDEO], b[-1][VIDEO])
