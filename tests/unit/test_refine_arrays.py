import numpy as np
import pytest
import torch

from simreal.bench.digits_data import real_digits_split, render_digits
from simreal.metrics.fid import fid_from_features
from simreal.refine import refine_arrays
from simreal.refine.arrays import train_array_refiner


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    syn, _ = render_digits(20, seed=3)  # 200 synthetic digits
    real = real_digits_split(0)[0]  # the unlabelled adaptation half (898)
    return syn, real


def _pixel_fid(a: np.ndarray, b: np.ndarray) -> float:
    return fid_from_features(a.reshape(len(a), -1), b.reshape(len(b), -1), method="eigvals")


def test_output_format_and_determinism(digits: tuple[np.ndarray, np.ndarray]) -> None:
    syn, real = digits
    threads = torch.get_num_threads()
    state = torch.random.get_rng_state()
    out = refine_arrays(syn, real, seed=7, steps=4)
    assert out.shape == syn.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 16 and np.array_equal(out, np.round(out))  # 17 levels
    assert np.array_equal(out, refine_arrays(syn, real, seed=7, steps=4))
    assert torch.get_num_threads() == threads and torch.equal(torch.random.get_rng_state(), state)
    assert np.array_equal(refine_arrays(syn, real, seed=7, steps=0), syn)


def test_bad_shapes_raise(digits: tuple[np.ndarray, np.ndarray]) -> None:
    syn, real = digits
    with pytest.raises(ValueError, match="differ in size"):
        refine_arrays(syn, real[:, :4, :4], seed=0, steps=1)
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        refine_arrays(syn.reshape(len(syn), -1), real, seed=0, steps=1)


def test_refinement_moves_pixel_statistics_towards_real(digits: tuple[np.ndarray, np.ndarray]) -> None:
    syn, real = digits
    out = refine_arrays(syn, real, seed=0, steps=200)
    assert 0 < np.mean(out != syn) < 0.5  # changed, but mostly the same digits
    assert _pixel_fid(out, real) < 0.95 * _pixel_fid(syn, real)


def test_refiner_trains_on_the_device_it_is_given(digits: tuple[np.ndarray, np.ndarray]) -> None:
    """``meta`` stands in for a GPU: a batch or index left on the host, or a model not moved, fails here."""
    syn, real = digits
    model = train_array_refiner(syn[:16], real[:16], seed=0, steps=2, device="meta")
    assert {p.device.type for p in model.parameters()} == {"meta"}
