"""Backbones, feature sizes and pretrained weights read from local files only."""

import pytest
import torch
import torchvision

from training.csn import PretrainedWeightsNotFound, build_backbone, torchvision_weights_path


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """Point torch.hub's cache at an empty temporary folder."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch"


@pytest.mark.parametrize("in_channels", [1, 3])
def test_small_cnn_features(in_channels):
    network, feature_dim = build_backbone("small-cnn", in_channels=in_channels)

    features = network(torch.rand(2, in_channels, 64, 64))

    assert features.shape == (2, feature_dim)


def test_resnet18_layer3_has_256_features():
    network, feature_dim = build_backbone("resnet18-layer3", in_channels=3)

    features = network(torch.rand(2, 3, 32, 32))

    assert feature_dim == 256
    assert features.shape == (2, 256)


@pytest.mark.parametrize(
    ("name", "expected_dim"),
    [("tv:resnet18", 512), ("tv:mobilenet_v3_small", 1024), ("tv:squeezenet1_1", 512)],
)
def test_torchvision_backbone_drops_head(name, expected_dim):
    network, feature_dim = build_backbone(name, in_channels=3)
    network.eval()

    with torch.no_grad():
        features = network(torch.rand(2, 3, 64, 64))

    assert feature_dim == expected_dim
    assert features.shape == (2, expected_dim)


def test_greyscale_input_repeats_channel():
    network, _ = build_backbone("resnet18-layer3", in_channels=1)
    network.eval()
    grey = torch.rand(2, 1, 32, 32)

    with torch.no_grad():
        from_grey = network(grey)
        # The wrapped RGB network, fed the grey image copied to three channels.
        from_rgb = network[1](grey.repeat(1, 3, 1, 1))

    assert torch.allclose(from_grey, from_rgb)


def test_torchvision_backbone_rejects_two_channels():
    with pytest.raises(ValueError, match="1 or 3 input channels"):
        build_backbone("tv:resnet18", in_channels=2)


def test_unknown_backbone_raises():
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("vgg-ish", in_channels=3)


def test_unknown_torchvision_model_raises():
    with pytest.raises(ValueError, match="unknown torchvision model"):
        build_backbone("tv:not_a_model", in_channels=3)


def test_missing_cached_weights_names_path(torch_home):
    expected_path, url = torchvision_weights_path("resnet18")

    with pytest.raises(PretrainedWeightsNotFound) as raised:
        build_backbone("resnet18-layer3", in_channels=3, pretrained="torchvision")

    message = str(raised.value)
    assert str(expected_path) in message
    assert url in message
    assert str(expected_path).startswith(str(torch_home))


def test_missing_weights_file_names_path(tmp_path):
    path = tmp_path / "absent.pth"

    with pytest.raises(PretrainedWeightsNotFound, match=str(path)):
        build_backbone("small-cnn", in_channels=1, pretrained=str(path))


def test_cached_weights_are_loaded(torch_home):
    reference = torchvision.models.resnet18(weights=None)
    with torch.no_grad():
        reference.conv1.weight.fill_(0.125)
    path, _ = torchvision_weights_path("resnet18")
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path)

    network, _ = build_backbone("resnet18-layer3", in_channels=3, pretrained="torchvision")

    assert torch.equal(network[0].weight, reference.conv1.weight)
    assert torch.equal(network[6][0].conv1.weight, reference.layer3[0].conv1.weight)


def test_small_cnn_weights_from_file(tmp_path):
    source, _ = build_backbone("small-cnn", in_channels=1)
    path = tmp_path / "small.pth"
    torch.save(source.state_dict(), path)

    loaded, _ = build_backbone("small-cnn", in_channels=1, pretrained=str(path))

    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_small_cnn_has_no_torchvision_weights():
    with pytest.raises(ValueError, match="no torchvision weights"):
        build_backbone("small-cnn", in_channels=1, pretrained="torchvision")
