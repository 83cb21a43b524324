#!/usr/bin/env python3
"""Checks a dataset written by `swiftrain convert era5 --from STORE.zarr` against xarray's reading of the store.

usage: check_zarr_convert.py STORE.zarr DATASET_DIR

Every row of every channel (and each constant) must equal xarray.open_zarr's value at that time and level,
rows in RainBench's order (latitude ascending from -87.1875, longitude from 0 E); rows whose time the store
lacks must be NaN. Prints one line per channel; exits 1 on the first difference.
"""
import json
import sys

import numpy as np
import xarray as xr

store, out = sys.argv[1], sys.argv[2]
ds = xr.open_zarr(store, consolidated=None)
name = out.rstrip("/").split("/")[-1]
info = json.load(open(f"{out}/{name}_info.json"))
m = info["memmap"][f"{name}__{name}.mmap"]
T, C, H, W = m["dims"]
data = np.memmap(f"{out}/{name}__{name}.mmap", dtype="<f4", mode="r", shape=(T, C, H, W))
rows = m["daterange"][0] + m["tfreq_s"] * np.arange(T)
times = ds.time.values.astype("datetime64[s]").astype("int64")
present = np.isin(rows, times)
long_names = {"t2m": "2m_temperature", "sp": "surface_pressure", "tp": "total_precipitation",
              "tp6h": "total_precipitation_6hr", "ciwc": "specific_cloud_ice_water_content",
              "clwc": "specific_cloud_liquid_water_content", "t": "temperature", "z": "geopotential",
              "q": "specific_humidity", "lsm": "land_sea_mask", "orography": "geopotential_at_surface",
              "slt": "soil_type"}


def rainbench(a):
    """(…, latitude, longitude) in RainBench's order: ascending latitude, longitude from 0 E."""
    a = a.assign_coords(longitude=a.longitude % 360).sortby("latitude").sortby("longitude")
    return a.transpose(..., "latitude", "longitude").values


failures = 0
checked = 0
for key, v in info["variables"].items():
    short = v["name"]
    if v["type"] == "const":
        cm = info["memmap"][v["mmap_name"]]
        const = np.fromfile(f"{out}/{v['mmap_name']}", dtype="<f4").reshape(cm["dims"])[v["offset"]]
        if short == "lat2d":
            want = np.repeat(np.sort(ds.latitude.values)[:, None], W, axis=1)
        elif short == "lon2d":
            want = np.repeat(np.sort(ds.longitude.values % 360)[None, :], H, axis=0)
        else:
            want = rainbench(ds[long_names[short]])
            if short == "orography":
                want = want / 9.80665
        ok = np.allclose(const, want.astype("f4"), rtol=1e-6, atol=0, equal_nan=False)
    else:
        base = short.split("_")[0] if short.endswith("hPa") else short
        a = ds[long_names[base]]
        if "level" in a.dims:
            a = a.sel(level=int(v["index2pressure"]["0"]))
        want = np.full((T, H, W), np.nan, dtype="f4")
        idx = np.searchsorted(times, rows[present])
        want[present] = rainbench(a.isel(time=idx)).astype("f4")
        got = data[:, v["offset"]]
        ok = np.array_equal(got, want, equal_nan=True)
        checked += int(present.sum())
    print(f"{key}: {'equal' if ok else 'DIFFERENT'}")
    failures += not ok
print(f"{checked} channel-rows compared, {T - int(present.sum())} rows absent from the store (NaN)")
sys.exit(1 if failures else 0)
