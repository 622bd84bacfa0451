"""StyleGAN2 generator: shapes, rosinality key layout and state-dict round trip."""

import pytest
import torch

from ml.normality.stylegan2 import Generator, load_generator, save_generator


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Small tensors are fastest on one thread, especially on a busy 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def small_generator(seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    return Generator(32, style_dim=32, n_mlp=8, max_channels=16).eval()


def test_output_shape_and_rosinality_keys():
    generator = small_generator()
    image = generator(torch.randn(2, 32))
    assert image.shape == (2, 3, 32, 32)
    keys = set(generator.state_dict())
    assert {
        "style.1.weight",
        "style.8.bias",
        "input.input",
        "conv1.conv.modulation.weight",
        "conv1.noise.weight",
        "conv1.activate.bias",
        "to_rgb1.bias",
        "convs.0.conv.blur.kernel",
        "to_rgbs.0.upsample.kernel",
        "noises.noise_6",
    } <= keys
    assert generator.n_latent == 8 and generator.num_layers == 7


def test_state_dict_round_trip_gives_identical_outputs(tmp_path):
    generator = small_generator(1)
    w_avg, _ = generator.mean_latent(samples=500)
    path = tmp_path / "g.pt"
    save_generator(generator, path, w_avg)
    loaded, loaded_avg = load_generator(path)
    z = torch.randn(3, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert torch.equal(generator(z), loaded(z))
    assert torch.allclose(loaded_avg, w_avg)
    other = small_generator(2)
    with torch.no_grad():
        assert not torch.allclose(other(z), loaded(z))


def test_mismatched_checkpoint_is_rejected(tmp_path):
    path = tmp_path / "g.pt"
    save_generator(small_generator(), path)
    with pytest.raises(ValueError, match="does not match"):
        load_generator(path, config={"size": 64, "style_dim": 32, "max_channels": 16})
    with pytest.raises(FileNotFoundError):
        load_generator(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="power of two"):
        Generator(48)


def test_w_avg_is_mean_of_mapped_samples():
    generator = small_generator()
    w_avg, w_std = generator.mean_latent(samples=10_000)
    with torch.no_grad():
        direct = generator.mapping(torch.randn(10_000, 32, generator=torch.Generator().manual_seed(0)))
    assert torch.allclose(w_avg, direct.mean(0, keepdim=True), atol=1e-5)
    assert float(w_std) > 0


def test_fir_upsampling_preserves_constants_and_doubles_size():
    from ml.normality.stylegan2 import Blur, ModulatedConv2d, Upsample

    constant = torch.full((1, 2, 8, 8), 3.0)
    upsampled = Upsample()(constant)
    assert upsampled.shape == (1, 2, 16, 16)
    assert torch.allclose(upsampled[..., 2:-2, 2:-2], torch.full_like(upsampled[..., 2:-2, 2:-2], 3.0))
    blurred = Blur(pad=(1, 2))(constant)
    assert blurred.shape == (1, 2, 8, 8) and torch.allclose(
        blurred[..., 1:-2, 1:-2], constant[..., 1:-2, 1:-2]
    )
    conv = ModulatedConv2d(4, 5, 3, style_dim=6, upsample=True)
    assert conv(torch.randn(2, 4, 8, 8), torch.randn(2, 6)).shape == (2, 5, 16, 16)
