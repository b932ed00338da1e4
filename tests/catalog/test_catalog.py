import pytest

from aicc.catalog import Catalog, default_catalog
from aicc.errors import ConfigError, UnknownAcceleratorType


def test_default_catalog_has_nvidia_and_domestic_parts():
    cat = default_catalog()
    assert {"h100-sxm-80g", "h200-141g", "b200"} <= set(cat.names)
    vendors = {t.vendor for t in cat}
    assert {"NVIDIA", "Huawei", "Cambricon"} <= vendors
    h100 = cat.get("h100-sxm-80g")
    assert (h100.memory_gb, h100.tdp_w, h100.peak_tflops) == (80, 700, 989)
    for t in cat:
        assert 0 <= t.idle_w < t.tdp_w


def test_index_is_stable_order():
    cat = default_catalog()
    assert [cat.index(n) for n in cat.names] == list(range(len(cat)))


def test_unknown_type_names_the_field():
    with pytest.raises(UnknownAcceleratorType) as exc:
        default_catalog().index("tpu-v9")
    assert exc.value.field == "accelerator_type"
    assert "tpu-v9" in exc.value.message


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('name="x1"\nvendor="v"\nmodel="m"\nmemory_gb=-1\npeak_tflops=1\ntdp_w=2\nidle_w=1\n'
         'price_weight=1', "type[0].memory_gb"),
        ('name="x1"\nvendor="v"\nmodel="m"\nmemory_gb=1\npeak_tflops=1\ntdp_w=2\nidle_w=3\n'
         'price_weight=1', "type[0].idle_w"),
        ('name="x1"\nvendor="v"\nmodel="m"\nmemory_gb=1\npeak_tflops=1\ntdp_w=2\nidle_w=1\n'
         'price_weight=1\ncolour="red"', "type[0].colour"),
    ],
)
def test_invalid_catalog_entries_are_rejected_naming_the_key(body, field):
    with pytest.raises(ConfigError) as exc:
        Catalog.from_toml("[[type]]\n" + body)
    assert exc.value.field == field
