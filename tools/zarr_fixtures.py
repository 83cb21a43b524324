#!/usr/bin/env python3
"""Zarr stores written by zarr-python itself, and what zarr-python reads back from them, for the Zarr tests.

usage: zarr_fixtures.py OUT

Writes OUT/<store>.zarr and OUT/manifest.json: for every array of every store, a region (start, count) and
the files OUT/expect/<store>/<array>.all.f64 and .region.f64 with zarr-python's values as little-endian
float64 (NaN where zarr-python reads NaN).
"""
import json
import os
import shutil
import sys

import numcodecs
import numpy as np
import pandas as pd
import xarray as xr
import zarr
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, GzipCodec, TransposeCodec, ZstdCodec

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(20261206)
levels = [50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 850, 925, 1000]
lat = -87.1875 + 5.625 * np.arange(32)
lon = 5.625 * np.arange(64)


def wb2(path, times):
    """WeatherBench 2's 64x32 layout: (time, [level,] longitude, latitude), Blosc-LZ4 byte shuffle, chunks of 4
    time steps (WB2 uses 100; 4 makes several chunks), time int64 hours since 1959-01-01, Zarr v2 consolidated."""
    t = pd.date_range(times[0], times[1], freq="6h")
    n = len(t)
    base = np.cos(np.deg2rad(lat))[None, None, :] * np.sin(np.deg2rad(lon))[None, :, None]
    data = {
        "2m_temperature": (("time", "longitude", "latitude"),
                           (250 + 40 * base + rng.normal(0, 1, (n, 64, 32))).astype("f4")),
        "surface_pressure": (("time", "longitude", "latitude"),
                             (1e5 + 2e3 * base + rng.normal(0, 50, (n, 64, 32))).astype("f4")),
        "total_precipitation_6hr": (("time", "longitude", "latitude"),
                                    (np.maximum(rng.gamma(0.3, 2e-3, (n, 64, 32)), 0) - 1e-7).astype("f4")),
    }
    for v, scale in [("temperature", 260), ("geopotential", 5e4), ("specific_humidity", 1e-3),
                     ("specific_cloud_ice_water_content", 1e-5), ("specific_cloud_liquid_water_content", 1e-5)]:
        data[v] = (("time", "level", "longitude", "latitude"),
                   (scale * (1 + 0.1 * rng.normal(0, 1, (n, len(levels), 64, 32)))).astype("f4"))
    data["land_sea_mask"] = (("longitude", "latitude"), (rng.random((64, 32)) > 0.7).astype("f4"))
    data["geopotential_at_surface"] = (("longitude", "latitude"), (rng.random((64, 32)) * 3e4).astype("f4"))
    data["soil_type"] = (("longitude", "latitude"), rng.integers(0, 8, (64, 32)).astype("f4"))
    ds = xr.Dataset(data, coords={"time": t, "level": np.array(levels, dtype="i8"), "longitude": lon,
                                  "latitude": lat})
    ds["total_precipitation_6hr"].attrs = {"units": "m", "long_name": "Total precipitation over 6 hours"}
    blosc = numcodecs.Blosc("lz4", 5, numcodecs.Blosc.SHUFFLE)
    enc = {v: {"chunks": (4,) + ds[v].shape[1:], "compressors": [blosc]} for v in data if "time" in ds[v].dims}
    enc["time"] = {"units": "hours since 1959-01-01", "dtype": "int64"}
    ds.to_zarr(path, zarr_format=2, consolidated=True, encoding=enc, mode="w")


wb2(f"{out}/wb2.zarr", ("2016-01-01", "2016-03-01 18:00"))
# A missing chunk (zarr-python writes none for an all-fill chunk; a partial download loses some): rows 8..11.
os.remove(f"{out}/wb2.zarr/2m_temperature/2.0.0")
os.remove(f"{out}/wb2.zarr/temperature/1.0.0.0")

# ARCO-ERA5-like, hourly, as Zarr v3 through xarray: (time, latitude, longitude) with latitudes descending and
# longitudes from -180, across a new year; one hour absent from the time axis.
t = pd.date_range("2017-12-31", "2018-01-01 23:00", freq="1h").delete(30)
n = len(t)
lat_desc, lon_180 = lat[::-1], np.concatenate([lon[32:] - 360, lon[:32]])
hourly = xr.Dataset({
    "2m_temperature": (("time", "latitude", "longitude"), rng.normal(280, 10, (n, 32, 64)).astype("f4")),
    "total_precipitation": (("time", "latitude", "longitude"), rng.gamma(0.3, 1e-4, (n, 32, 64)).astype("f4")),
    "temperature": (("time", "level", "latitude", "longitude"),
                    rng.normal(250, 10, (n, len(levels), 32, 64)).astype("f4")),
}, coords={"time": t, "level": np.array(levels, dtype="i8"), "latitude": lat_desc, "longitude": lon_180})
hourly.to_zarr(f"{out}/era_hourly.zarr", zarr_format=3, consolidated=False, mode="w",
               encoding={"time": {"units": "hours since 1900-01-01", "dtype": "int64"},
                         "temperature": {"chunks": (5, 13, 32, 64), "shards": (10, 13, 32, 64)}})

# Zarr v3: zstd inside shards with a CRC-32C index, a transposed gzip array, a big-endian one.
g3 = zarr.open_group(f"{out}/v3.zarr", mode="w", zarr_format=3)
a = g3.create_array("sharded", shape=(10, 3, 64, 32), chunks=(2, 3, 16, 32), shards=(4, 3, 64, 32), dtype="f4",
                    compressors=[ZstdCodec(level=3)], fill_value=np.nan, dimension_names=["time", "level", "lon", "lat"])
a[:] = rng.normal(0, 1, a.shape).astype("f4")
a[4:6] = np.nan  # whole inner chunks of fill: zarr-python leaves them out of the shard
b = g3.create_array("transposed", shape=(5, 7, 9), chunks=(2, 3, 4), dtype="f8", fill_value=-1.5,
                    serializer=BytesCodec(endian="big"), filters=[TransposeCodec(order=[2, 0, 1])],
                    compressors=[GzipCodec(level=4), Crc32cCodec()])
b[:] = rng.normal(0, 1, b.shape)
b[0:2, 0:3, 0:4] = -1.5  # a chunk all fill: not written
c = g3.create_array("ints", shape=(6, 5), chunks=(4, 4), dtype="i2", fill_value=7,
                    compressors=[BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")])
c[:] = rng.integers(-300, 300, c.shape, dtype="i2")
zarr.consolidate_metadata(f"{out}/v3.zarr")

# Zarr v2: F order, "/" separator, zlib; and a non-consolidated store with gzip and big-endian int64.
g2 = zarr.open_group(f"{out}/forder.zarr", mode="w", zarr_format=2)
d = g2.create_array("f", shape=(7, 6, 5), chunks=(3, 4, 2), dtype="f4", order="F", chunk_key_encoding={"name": "v2", "separator": "/"},
                    compressors=[numcodecs.Zlib(level=1)], fill_value=np.nan)
d[:] = rng.normal(0, 1, d.shape).astype("f4")
d[6, 4:, 4] = np.nan
e = g2.create_array("big", shape=(9,), chunks=(4,), dtype=">i8", compressors=[numcodecs.GZip(level=2)], fill_value=0)
e[:] = rng.integers(-2**40, 2**40, 9)

manifest = []
for store in ["wb2", "v3", "forder"]:
    group = zarr.open_group(f"{out}/{store}.zarr", mode="r")
    os.makedirs(f"{out}/expect/{store}", exist_ok=True)
    for name, arr in sorted(group.arrays()):
        full = np.asarray(arr[...], dtype="<f8")
        start = [s // 3 for s in arr.shape]
        count = [max(1, s - st - s // 4) for s, st in zip(arr.shape, start)]
        region = full[tuple(slice(st, st + n) for st, n in zip(start, count))]
        full.tofile(f"{out}/expect/{store}/{name}.all.f64")
        np.ascontiguousarray(region).tofile(f"{out}/expect/{store}/{name}.region.f64")
        manifest.append({"store": store, "array": name, "shape": list(arr.shape), "start": start, "count": count,
                         "dims": list(getattr(arr.metadata, "dimension_names", None) or arr.attrs.get("_ARRAY_DIMENSIONS", []) or [])})
json.dump(manifest, open(f"{out}/manifest.json", "w"), indent=1)
print(f"{len(manifest)} arrays in 3 stores")
