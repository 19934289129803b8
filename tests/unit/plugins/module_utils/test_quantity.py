"""Quantities rendered as resource.Quantity.String() prints them (the form the API server and Kueue's
webhook store), so that applying the same config twice changes nothing."""
import pytest

from ansible_collections.gpufleet.platform.plugins.module_utils.quantity import QuantityError, canonical


@pytest.mark.parametrize("value,expected", [
    (4, "4"), ("4", "4"), (0, "0"), ("0", "0"), (1000, "1k"), ("1000", "1k"), (1500, "1500"), ("2000000", "2M"),
    ("128", "128"), ("1Ti", "1Ti"), ("4Ti", "4Ti"), ("1024Gi", "1Ti"), ("1536Mi", "1536Mi"), ("1.5Gi", "1536Mi"),
    ("512", "512"), ("1023Ki", "1023Ki"), ("500m", "500m"), ("0.5", "500m"), (0.25, "250m"), ("1k", "1k"),
    ("100M", "100M"), ("1e3", "1k"), ("1G", "1G"), ("16Gi", "16Gi"),
])
def test_canonical_matches_the_api_servers_form(value, expected):
    assert canonical(value) == expected


@pytest.mark.parametrize("bad", ["", "abc", "1KB", "--1", True, "1.2.3"])
def test_not_a_quantity(bad):
    with pytest.raises(QuantityError):
        canonical(bad)
