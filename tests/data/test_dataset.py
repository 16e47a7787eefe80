import numpy as np
import pytest
from PIL import Image

from itsacat.data import DatasetError, load_dataset
from tests.conftest import write_h5_dataset


def _error(*args, **kwargs) -> str:
    with pytest.raises(DatasetError) as caught:
        load_dataset(*args, **kwargs)
    return str(caught.value)


def test_load_real_dataset_one_file_and_pair_agree(shared_data):
    datasets = shared_data / "datasets"
    single = load_dataset(datasets / "datasets.h5")
    pair = load_dataset(datasets / "train_catvnoncat.h5", datasets / "test_catvnoncat.h5")
    assert (single.train.m, single.test.m) == (209, 50)
    assert int(single.train.y.sum()) == 72
    assert int(single.test.y.sum()) == 33
    assert single.class_names == ("non-cat", "cat")
    assert single.digest == pair.digest
    assert np.array_equal(single.test.x, pair.test.x)


def test_split_inputs_are_columns_scaled_to_unit_range(real_dataset):
    X = real_dataset.train.X()
    assert X.shape == (12288, 209)
    assert X.dtype == np.float64
    assert X.min() >= 0.0
    assert X.max() <= 1.0
    assert X[:, 5] == pytest.approx(real_dataset.train.x[5].reshape(-1) / 255.0)
    assert real_dataset.train.Y().shape == (1, 209)


def test_digest_changes_with_one_pixel(tmp_path):
    first = load_dataset(write_h5_dataset(tmp_path / "a.h5"))
    x = first.train.x.copy()
    x[0, 0, 0, 0] ^= 1
    second = load_dataset(write_h5_dataset(tmp_path / "b.h5", train_set_x=x))
    assert first.digest != second.digest
    assert load_dataset(write_h5_dataset(tmp_path / "c.h5")).digest == first.digest


def test_missing_test_keys_names_file_and_key(cases):
    path = cases / "dataset_missing_test_keys.h5"
    assert _error(path) == (f"data set {path}: key 'test_set_x' not found in {path}; the "
                            "reference layout needs train_set_x, train_set_y, test_set_x, "
                            "test_set_y")


def test_labels_2d_are_flattened_not_broadcast(cases):
    dataset = load_dataset(cases / "dataset_labels_2d.h5")
    assert dataset.train.y.shape == (12,)
    assert dataset.test.y.shape == (4,)
    assert dataset.train.Y().shape == (1, 12)


def test_labels_of_two_real_dimensions_are_refused(tmp_path):
    path = write_h5_dataset(tmp_path / "d.h5", train_set_y=np.zeros((3, 4), dtype=np.int64))
    assert _error(path) == (f"data set {path}: train_set_y has shape (3, 4); expected (m,), "
                            "(1, m) or (m, 1)")


def test_prescaled_float_pixels_are_refused(cases):
    path = cases / "dataset_x_float_prescaled.h5"
    assert _error(path) == (f"data set {path}: train_set_x has dtype float64, values already "
                            "in [0, 1]; itsacat scales pixels itself, so store the raw 0–255 "
                            "pixels as uint8")


def test_labels_outside_zero_one_are_refused(tmp_path):
    path = write_h5_dataset(tmp_path / "d.h5", train_set_y=np.array([0, 1, 2] * 4))
    assert _error(path) == (f"data set {path}: train_set_y contains labels [2]; expected only "
                            "0 and 1")


def test_image_and_label_counts_must_match(tmp_path):
    path = write_h5_dataset(tmp_path / "d.h5", test_set_y=np.array([0, 1, 0]))
    assert _error(path) == (f"data set {path}: test_set_x has 4 images but test_set_y has 3 "
                            "labels; every image needs exactly one label")


def test_empty_split_is_refused(tmp_path):
    path = write_h5_dataset(tmp_path / "d.h5", m_test=0)
    assert _error(path) == (f"data set {path}: the test split is empty; it needs at least "
                            "one image")


def test_wrong_image_shape_is_refused(tmp_path):
    path = write_h5_dataset(tmp_path / "d.h5",
                            train_set_x=np.zeros((12, 32, 32, 3), dtype=np.uint8))
    assert _error(path) == (f"data set {path}: train_set_x has shape (12, 32, 32, 3); "
                            "expected (m, 64, 64, 3)")


def test_missing_file_says_what_to_pass(tmp_path):
    path = tmp_path / "absent.h5"
    assert _error(path) == (f"data set {path}: no such file or folder; pass --data with an "
                            ".h5 file or an image folder (root/<class name>/*.jpg)")


def test_half_copied_h5_is_refused(tmp_path, small_dataset_path):
    path = tmp_path / "partial.h5"
    path.write_bytes(small_dataset_path.read_bytes()[:5000])
    assert _error(path).startswith(f"data set {path}: not a readable HDF5 file (")


def _write_folder(root, counts, size=(80, 50)):
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            colour = (200, 40, 40) if name == "cat" else (40, 40, 200)
            Image.new("RGB", size, colour).save(root / name / f"{i}.png")


def test_image_folder_split_and_positive_class(tmp_path):
    _write_folder(tmp_path / "pics", {"cat": 10, "dog": 5})
    dataset = load_dataset(tmp_path / "pics", test_ratio=0.2, seed=3)
    assert dataset.class_names == ("dog", "cat")
    assert (dataset.train.m, dataset.test.m) == (12, 3)
    assert int(dataset.test.y.sum()) == 2
    assert dataset.train.x.shape[1:] == (64, 64, 3)
    cat_pixel = dataset.train.x[dataset.train.y == 1][0, 0, 0]
    assert cat_pixel.tolist() == [200, 40, 40]
    assert load_dataset(tmp_path / "pics", seed=3).digest == dataset.digest


def test_image_folder_with_three_classes_is_refused(tmp_path):
    _write_folder(tmp_path / "pics", {"a": 1, "b": 1, "c": 1})
    assert _error(tmp_path / "pics") == (f"data set {tmp_path / 'pics'}: found 3 class "
                                         "folders ['a', 'b', 'c']; expected exactly two, such "
                                         "as cat/ and non-cat/")


def test_image_folder_with_bad_picture_names_the_file(tmp_path, cases):
    _write_folder(tmp_path / "pics", {"cat": 2, "non-cat": 2})
    (tmp_path / "pics" / "cat" / "broken.jpg").write_bytes((cases / "truncated.jpg").read_bytes())
    message = _error(tmp_path / "pics")
    assert message.startswith(f"data set image {tmp_path / 'pics' / 'cat' / 'broken.jpg'}: the "
                              "JPEG image is corrupt or truncated")
    assert message.endswith("fix or remove the file")


def test_image_folder_with_empty_class_is_refused(tmp_path):
    _write_folder(tmp_path / "pics", {"cat": 2, "non-cat": 0})
    assert _error(tmp_path / "pics").startswith(f"data set {tmp_path / 'pics'}: class folder "
                                                "non-cat/ holds no pictures")
