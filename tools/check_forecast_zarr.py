#!/usr/bin/env python3
"""Checks `swiftrain predict --format zarr` against the NetCDF forecast of the same run and init times.

usage: check_forecast_zarr.py FORECAST.zarr FORECAST.nc

The Zarr store must open with xarray.open_zarr (consolidated) in WeatherBench 2's forecast layout: coordinates
time (datetime64), prediction_timedelta (timedelta64), latitude ascending, longitude from 0 E; its forecast
variable (WeatherBench 2's name and units) must equal the NetCDF's precipitation at every init time, lead,
latitude and longitude (ERA5 targets: the NetCDF's mm as m).
"""
import sys

import numpy as np
import xarray as xr

z = xr.open_zarr(sys.argv[1], consolidated=True)
nc = xr.open_dataset(sys.argv[2])
problems = []
if z.time.dtype.kind != "M":
    problems.append(f"time is {z.time.dtype}, not datetime64")
if z.prediction_timedelta.dtype.kind != "m":
    problems.append(f"prediction_timedelta is {z.prediction_timedelta.dtype}, not timedelta64")
if not np.array_equal(z.time.values, nc.init_time.values):
    problems.append(f"time {z.time.values[:3]} vs init_time {nc.init_time.values[:3]}")
if not np.array_equal(z.prediction_timedelta.values, nc.lead_time.values):
    problems.append(f"prediction_timedelta {z.prediction_timedelta.values} vs lead_time {nc.lead_time.values}")
if not (np.all(np.diff(z.latitude.values) > 0) and np.allclose(z.latitude.values, nc.lat.values)):
    problems.append("latitude is not ascending or not the NetCDF's")
if not np.allclose(z.longitude.values, nc.lon.values) or z.longitude.values[0] != 0:
    problems.append("longitude is not the NetCDF's from 0 E")
names = [v for v in z.data_vars if v != "truth"]
if len(names) != 1:
    problems.append(f"forecast variables {names}")
else:
    name = names[0]
    factor = 1e-3 if name.startswith("total_precipitation") else 1.0
    want = nc.precipitation.rename(init_time="time", lead_time="prediction_timedelta", lat="latitude",
                                   lon="longitude") * factor
    got = z[name].transpose("time", "prediction_timedelta", "latitude", "longitude")
    if z[name].dims != ("time", "prediction_timedelta", "longitude", "latitude"):
        problems.append(f"{name} dims {z[name].dims}")
    if not np.allclose(got.values, want.values, rtol=1e-6, atol=0, equal_nan=True):
        problems.append(f"{name} differs from the NetCDF's precipitation")
    print(f"{name}: {got.shape} {z[name].attrs.get('units')}")
if "truth" in nc and ("truth" not in z or not np.allclose(
        z.truth.transpose("time", "prediction_timedelta", "latitude", "longitude").values,
        nc.truth.values * (1e-3 if names and names[0].startswith("total_precipitation") else 1), rtol=1e-6,
        equal_nan=True)):
    problems.append("truth differs")
for p in problems:
    print("PROBLEM:", p)
sys.exit(1 if problems else 0)
