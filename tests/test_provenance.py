"""What a result records (core/provenance.py): parameters given as numpy numbers are
stored as plain Python values, so results and models are saved as JSON."""

from __future__ import annotations

import json

import numpy as np

import napari_pixel_clusters as npc


def test_numpy_numbers_as_parameters_become_plain_python_values(tmp_path):
    """np.int64 and friends were stored as given: json.dumps of params failed, and with it
    write_result and save_model ("int64 is not JSON serializable")."""
    image = np.random.default_rng(0).integers(0, 50, (2, 8, 9)).astype(np.uint16)
    seg = npc.segment(
        image,
        "kmeans",
        np.int64(3),
        channel_axis=np.int64(0),
        random_state=np.int64(3),
        spatial_weight=np.float32(0.5),
        standardize=np.bool_(True),
        n_init=np.int8(2),
        tol=np.float16(0.01),
        rgb=None,
    )
    text = json.dumps(seg.params)
    assert json.loads(text)["image"]["channel_axis"] == 0
    assert type(seg.params["n_init"]) is int and type(seg.params["tol"]) is float
    npc.write_result(seg, tmp_path / "result")
    npc.save_model(seg.model, tmp_path / "model.json")
    again = npc.load_model(tmp_path / "model.json").predict(image, channel_axis=np.int64(0))
    np.testing.assert_array_equal(again.labels, seg.labels)
    canny = npc.segment(
        image[0],
        "canny",
        sigma=np.float32(1.5),
        low_threshold=np.int64(2),
        high_threshold=np.uint8(10),
        use_quantiles=np.bool_(False),
    )
    json.dumps(canny.params)


def test_package_versions_are_read_once_and_given_as_a_new_dict(monkeypatch):
    from importlib import metadata

    from napari_pixel_clusters.core import provenance

    first = provenance.package_versions()
    assert first["numpy"] == metadata.version("numpy") == np.__version__
    assert set(first) == {"python", *provenance.PACKAGES}

    def no_more_reading(name):
        raise AssertionError("package metadata read again")

    monkeypatch.setattr(metadata, "version", no_more_reading)
    first["numpy"] = "changed by a caller"
    second = provenance.package_versions()
    assert second["numpy"] == np.__version__ and second is not first
