#!/usr/bin/env python3
"""Open a `swiftrain predict` file with xarray, as WeatherBench-style tools do, and check its layout.

    pip install xarray netCDF4 numpy      # not needed by SwiftRain itself
    python3 tools/check_netcdf.py RUN/predict/FILE.nc

Checks: dims (init_time, lead_time, lat, lon); init_time decoded to datetime64 and lead_time to
timedelta64 from their CF units; lat ascending from the south, lon from 0; units and standard_name on the
field; with `truth`, prints the latitude-weighted RMSE per lead time. Exit status 0 when every check holds.
"""
import sys

import numpy as np
import xarray as xr


def main(path):
    ds = xr.open_dataset(path)
    p = ds["precipitation"]
    problems = []
    if p.dims != ("init_time", "lead_time", "lat", "lon"):
        problems.append(f"dims {p.dims}")
    if not np.issubdtype(ds["init_time"].dtype, np.datetime64):
        problems.append(f"init_time decodes to {ds['init_time'].dtype}, not datetime64")
    if not np.issubdtype(ds["lead_time"].dtype, np.timedelta64):
        problems.append(f"lead_time decodes to {ds['lead_time'].dtype}, not timedelta64")
    if not (np.diff(ds["lat"].values) > 0).all() or ds["lon"].values[0] != 0:
        problems.append("lat must ascend from the south and lon start at 0")
    for key in ("units", "standard_name"):
        if key not in p.attrs:
            problems.append(f"precipitation has no {key}")
    valid = ds["init_time"] + ds["lead_time"]
    if "valid_time" in ds and not (ds["valid_time"] == valid).all():
        problems.append("valid_time is not init_time + lead_time")
    print(f"{path}: {dict(ds.sizes)}; init {str(ds['init_time'].values[0])[:16]} … "
          f"{str(ds['init_time'].values[-1])[:16]}; leads {[int(h) for h in ds['lead_time'].values / np.timedelta64(1, 'h')]} h; "
          f"{p.attrs.get('units')} ({p.attrs.get('standard_name')})")
    if "truth" in ds:
        w = np.cos(np.deg2rad(ds["lat"]))
        w = w / w.mean()
        err = ((p - ds["truth"]) ** 2 * w).mean(("init_time", "lat", "lon"), skipna=True) ** 0.5
        print("RMSE per lead: " + ", ".join(f"{int(h)} h {v:.3f}" for h, v in
              zip(ds["lead_time"].values / np.timedelta64(1, "h"), err.values)))
    for msg in problems:
        print("problem:", msg)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
