import numpy as np
import pytest
import torch

from dfdf_train.faces import (DETECTORS, Detector, MTCNNDetector, TorchScriptDetector,
                              build_detector, rescale_factor)
from dfdf_train.tracking import iou

# carphone_pristine frame 0: MTCNN's box, checked by eye (the talking man's face)
CARPHONE_FACE0 = np.array([64.4, 37.9, 111.2, 95.8])


@pytest.fixture(scope="module")
def mtcnn():
    return build_detector("mtcnn", device="cpu")


def test_mtcnn_finds_the_carphone_face(mtcnn, carphone):
    assert isinstance(mtcnn, Detector) and isinstance(mtcnn, MTCNNDetector)
    frames = carphone.frames[[0, 30, 60, 90]]
    boxes = mtcnn.detect(frames)
    assert len(boxes) == 4
    assert all(b.shape == (1, 5) and b.dtype == np.float32 for b in boxes)
    assert iou(boxes[0][0, :4], CARPHONE_FACE0) > 0.9
    assert boxes[0][0, 4] > 0.99
    for b in boxes:  # the face stays in the middle of the frame, roughly 50x60 pixels
        x1, y1, x2, y2, _ = b[0]
        assert 20 < x1 < x2 < 140 and 10 < y1 < y2 < 120 and 35 < x2 - x1 < 70


def test_boxes_come_back_in_original_pixels(mtcnn, carphone):
    frame = carphone.frames[:1]
    big = frame.repeat(3, axis=1).repeat(3, axis=2)  # 528x432: rescaled to 512 inside
    assert rescale_factor(432, 528, 512, False) < 1
    got = mtcnn.detect(torch.from_numpy(big))[0]  # torch input too
    assert got.shape == (1, 5)
    assert iou(got[0, :4], CARPHONE_FACE0 * 3) > 0.85
    # and no rescaling at all gives the native box
    native = build_detector("mtcnn", device="cpu", longer_side=None).detect(frame)[0]
    assert iou(native[0, :4], CARPHONE_FACE0) > 0.95


def test_no_face_on_a_street_scene(mtcnn):
    from dfaug import read_video
    from dfaug.testing import media_path
    bikes = read_video(media_path("bikes.mp4")).frames[:30:10]
    assert all(len(b) == 0 for b in mtcnn.detect(bikes[:, 100:244, 300:476]))


class _Fixed(torch.nn.Module):
    """A stand-in detector: one box at fixed fractions of the input, one padding row."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, h, w = x.shape[0], x.shape[2], x.shape[3]
        one = torch.ones(())
        box = torch.stack([0.25 * w * one, 0.25 * h * one, 0.75 * w * one, 0.5 * h * one,
                           0.8 * one])
        pad = torch.zeros(5)
        return torch.stack([box, pad]).unsqueeze(0).expand(n, 2, 5).clone()


def _save(kind, path):
    if kind == "torchscript":
        torch.jit.save(torch.jit.script(_Fixed()), path)
    else:
        dim = torch.export.Dim
        ep = torch.export.export(_Fixed(), (torch.zeros(2, 3, 64, 80),),
                                 dynamic_shapes=({0: dim("n"), 2: dim("h"), 3: dim("w")},))
        torch.export.save(ep, path)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit is deprecated, still loads
@pytest.mark.parametrize("kind,name", [("torchscript", "det.pt"), ("export", "det.pt2")])
def test_torchscript_detector_from_a_file(tmp_path, kind, name):
    path = str(tmp_path / name)
    _save(kind, path)
    det = build_detector("torchscript", weights=path, device="cpu")
    assert isinstance(det, TorchScriptDetector) and det.threshold == 0.3
    frames = np.zeros((3, 1080, 1920, 3), np.uint8)
    boxes = det.detect(frames)
    assert len(boxes) == 3
    for b in boxes:  # the padding row (score 0) is dropped, the box maps back to 1080p
        np.testing.assert_allclose(b, [[480, 270, 1440, 540, 0.8]], rtol=1e-4)
    assert all(len(b) == 0 for b in build_detector(
        "torchscript", weights=path, device="cpu", threshold=0.9).detect(frames))


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_detector_errors(tmp_path):
    with pytest.raises(ValueError, match="mtcnn.*torchscript"):
        build_detector("dsfd")
    assert sorted(DETECTORS) == ["mtcnn", "torchscript"]
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        build_detector("torchscript", weights=str(tmp_path / "nope.pt"), device="cpu")
    with pytest.raises(ValueError, match="--detector-weights"):
        build_detector("torchscript")
    with pytest.raises(ValueError, match="--detector-weights"):
        build_detector("mtcnn", weights="x.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="TorchScript"):
        build_detector("torchscript", weights=str(junk), device="cpu")
    junk2 = tmp_path / "junk.pt2"
    junk2.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="torch.export"):
        build_detector("torchscript", weights=str(junk2), device="cpu")
    with pytest.raises(ValueError, match="longer_side"):
        build_detector("mtcnn", longer_side=4)
    with pytest.raises(ValueError, match="shape"):
        build_detector("mtcnn", device="cpu").detect(np.zeros((2, 10, 10), np.uint8))
