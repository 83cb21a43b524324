#!/usr/bin/env python3
"""A year of WeatherBench 2's 64x32 ERA5 layout (every array RainBench's ERA5 channels need, 13 levels, chunks of
100 time steps, Blosc-LZ4 byte shuffle, Zarr v2 consolidated) with smooth synthetic values, for measuring
`swiftrain convert era5 --from` (docs/zarr.md). usage: wb2_year.py OUT.zarr [YEAR]"""
import sys

import numcodecs
import numpy as np
import pandas as pd
import xarray as xr

out, year = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2016
t = pd.date_range(f"{year}-01-01", f"{year}-12-31 18:00", freq="6h")
levels = [50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 850, 925, 1000]
lat, lon = -87.1875 + 5.625 * np.arange(32), 5.625 * np.arange(64)
rng = np.random.default_rng(1)
# Smooth fields: a large-scale pattern moving east plus a little noise, as real weather compresses.
phase = 2 * np.pi * np.arange(len(t))[:, None, None] / 40
pattern = np.cos(np.deg2rad(lat))[None, None, :] * np.sin(np.deg2rad(lon)[None, :, None] + phase)


def field(scale, shape):
    return (scale * (1 + 0.05 * pattern.reshape(shape[:1] + (1,) * (len(shape) - 3) + shape[-2:])
                     + 0.01 * rng.standard_normal(shape, dtype="f4"))).astype("f4")


n = len(t)
data = {"2m_temperature": (("time", "longitude", "latitude"), field(280, (n, 64, 32))),
        "surface_pressure": (("time", "longitude", "latitude"), field(1e5, (n, 64, 32))),
        "total_precipitation_6hr": (("time", "longitude", "latitude"), np.maximum(field(1e-3, (n, 64, 32)) - 1e-3, 0))}
for v, s in [("temperature", 250), ("geopotential", 5e4), ("specific_humidity", 1e-3),
             ("specific_cloud_ice_water_content", 1e-5), ("specific_cloud_liquid_water_content", 1e-5)]:
    data[v] = (("time", "level", "longitude", "latitude"), field(s, (n, 13, 64, 32)))
for v in ["land_sea_mask", "geopotential_at_surface", "soil_type"]:
    data[v] = (("longitude", "latitude"), rng.random((64, 32)).astype("f4"))
ds = xr.Dataset(data, coords={"time": t, "level": levels, "longitude": lon, "latitude": lat})
blosc = numcodecs.Blosc("lz4", 5, numcodecs.Blosc.SHUFFLE)
enc = {v: {"chunks": (100,) + ds[v].shape[1:], "compressors": [blosc]} for v in data if "time" in ds[v].dims}
enc["time"] = {"units": "hours since 1959-01-01", "dtype": "int64"}
ds.to_zarr(out, zarr_format=2, consolidated=True, encoding=enc, mode="w")
