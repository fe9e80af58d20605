"""Random grid worlds with shortest-path labels, for specs/vin.yaml.

Each sample: ``grid`` (G, G, 2) float32 — channel 0 obstacles, channel 1 the goal —,
``position`` (1,) int32 — the agent's cell as ``row * G + column`` — and ``action``,
the first optimal move in the order up, down, left, right (ties broken by that order,
so the label is a function of the input). Distances come from a vectorised
Bellman-Ford relaxation over the whole batch.
"""
import sys

import numpy as np

MOVES = np.array([(-1, 0), (1, 0), (0, -1), (0, 1)])   # up, down, left, right


def _shift(a, dr, dc, fill):
    """out[r, c] = a[r + dr, c + dc] (``fill`` outside the grid), for a batch (N, G, G)."""
    out = np.full_like(a, fill)
    g = a.shape[1]
    rs, rd = slice(max(dr, 0), g + min(dr, 0)), slice(max(-dr, 0), g + min(-dr, 0))
    cs, cd = slice(max(dc, 0), g + min(dc, 0)), slice(max(-dc, 0), g + min(-dc, 0))
    out[:, rd, cd] = a[:, rs, cs]
    return out


def make(n: int, grid: int = 8, obstacle_density: float = 0.2, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    obstacles = rng.random((n, grid, grid)) < obstacle_density
    flat = np.arange(grid * grid)
    goal = np.array([rng.choice(flat[~o.ravel()]) for o in obstacles])
    goal_map = np.zeros((n, grid * grid), bool)
    goal_map[np.arange(n), goal] = True
    goal_map = goal_map.reshape(n, grid, grid)
    obstacles &= ~goal_map
    dist = np.where(goal_map, 0.0, np.inf)
    for _ in range(grid * grid):
        best = np.min([_shift(dist, dr, dc, np.inf) for dr, dc in MOVES], axis=0) + 1
        new = np.where(obstacles, np.inf, np.minimum(dist, best))
        if np.array_equal(new, dist):
            break
        dist = new
    reachable = np.isfinite(dist) & (dist > 0)
    keep = reachable.reshape(n, -1).any(axis=1)
    position = np.array([rng.choice(flat[r.ravel()]) if k else 0
                         for r, k in zip(reachable, keep)])
    rows, cols = np.divmod(position, grid)
    neighbour = np.stack([_shift(dist, dr, dc, np.inf)[np.arange(n), rows, cols]
                          for dr, dc in MOVES], axis=1)
    action = np.argmin(neighbour, axis=1)
    grids = np.stack([obstacles, goal_map], axis=-1).astype(np.float32)
    return {"grid": grids[keep], "position": position[keep, None].astype(np.int32),
            "action": action[keep].astype(np.int64)}


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "out/gridworlds.npz"
    np.savez(out, **make(4000))
    print(f"wrote {out}")
