import numpy as np
import pytest

from tilesearch.tiling import Window, batched, block_of, offsets, tile_grid


def test_offsets_cover_the_far_edge_with_a_flush_last_tile():
    assert offsets(600, 256, 128) == [0, 128, 256, 344]
    assert offsets(512, 256, 128) == [0, 128, 256]
    assert offsets(256, 256, 128) == [0]
    assert offsets(255, 256, 128) == []


def test_offsets_reject_nonpositive_size_or_stride():
    with pytest.raises(ValueError):
        offsets(600, 256, 0)


@pytest.mark.parametrize("seed", range(5))
def test_grid_covers_every_pixel_and_stays_inside(seed):
    rng = np.random.default_rng(seed)
    width, height = (int(v) for v in rng.integers(256, 1500, size=2))
    size, stride = 256, int(rng.choice([64, 128, 256]))
    covered = np.zeros((height, width), dtype=np.int32)
    grid = tile_grid(width, height, size, stride)
    for w in grid:
        assert w.col_off >= 0 and w.col_end <= width and w.row_off >= 0 and w.row_end <= height
        covered[w.row_off:w.row_end, w.col_off:w.col_end] += 1
    assert covered.min() >= 1
    assert len(set(grid)) == len(grid)


def test_grid_is_row_major():
    grid = tile_grid(600, 400, 256, 128)
    assert grid == sorted(grid, key=lambda w: (w.row_off, w.col_off))
    assert len(grid) == 4 * 3  # rows at 0, 128 and 144 (flush with the bottom)


def test_window_overlap_and_intersection():
    a = Window(0, 0, 256, 256)
    assert a.overlaps(Window(128, 128, 256, 256))
    assert a.intersection_area(Window(128, 128, 256, 256)) == 128 * 128
    assert not a.overlaps(Window(256, 0, 256, 256))
    assert a.intersection_area(Window(256, 0, 256, 256)) == 0


def test_block_of_and_batched():
    grid = tile_grid(600, 400, 256, 128)
    assert block_of(grid) == Window(0, 0, 600, 400)
    batches = list(batched(grid, 5))
    assert [len(b) for b in batches] == [5, 5, 2]
    assert [w for b in batches for w in b] == grid


def test_coarse_fractions_average_the_cells_a_window_touches():
    import numpy as np

    from tilesearch.tiling import coarse_fractions

    coarse = np.zeros((4, 6), bool)
    coarse[:2, :3] = True  # the top-left 96 x 64 px of a 192 x 128 px image, cells of 32 px
    wins = [Window(0, 0, 64, 64), Window(64, 0, 64, 64), Window(100, 70, 92, 58),
            Window(32, 32, 96, 64)]
    np.testing.assert_allclose(coarse_fractions(coarse, 32, wins), [1.0, 0.5, 0.0, 2 / 6])
