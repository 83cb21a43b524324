"""anemoi-datasets stores made by anemoi-datasets itself from NetCDF, for AnemoiConvertTests.

    python tools/anemoi_fixture.py DIR

writes DIR/sfc.nc and DIR/pl.nc (ERA5's RainBench variables and a few others on the 5.625° grid, latitudes
north to south and longitudes from -180°, so anemoi's cells are in neither RainBench's order nor its
orientation), a recipe joining them every 6 h for January-February 2016 with one date missing, and runs
`anemoi-datasets create` into DIR/era.zarr. DIR/grid25/grid25.zarr is the same on a 2.5° grid (refused by
swiftrain), DIR/fine/fine.zarr two days on the 1.40625° grid. Needs anemoi-datasets, which pins zarr < 3: run it from its own virtual environment.
"""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

MISSING = "2016-01-10T12:00:00"


def grid(res):
    lat = np.arange(90 - res / 2, -90, -res)  # north to south, as ECMWF's grids
    lon = np.arange(-180, 180, res)  # from the date line
    return lat, lon


def fields(times, lat, lon, levels, seed):
    rng = np.random.default_rng(seed)
    t, h, w = len(times), len(lat), len(lon)
    la = np.deg2rad(lat)[None, :, None]
    lo = np.deg2rad(lon)[None, None, :]
    hours = ((times - times[0]) / pd.Timedelta("1h")).to_numpy()[:, None, None]

    def smooth(base, amp, k):  # a travelling wave plus noise: compressible, different at every cell and time
        wave = np.cos(la) * np.sin(k * lo - 2 * np.pi * hours / (24 * (k + 2)))
        return (base + amp * (wave + 0.1 * rng.standard_normal((t, h, w)))).astype(np.float32)

    sfc = {
        "2t": smooth(280, 15, 1), "sp": smooth(98000, 1500, 2),
        "tp": np.maximum(smooth(0.0005, 0.001, 3), 0), "10u": smooth(0, 5, 4),
    }
    static = {  # constant in time, as anemoi's forcings are
        "lsm": rng.uniform(0, 1, (h, w)), "z": rng.uniform(0, 30000, (h, w)), "slt": rng.integers(0, 8, (h, w)),
    }
    for k, v in static.items():
        sfc[k] = np.repeat(v[None].astype(np.float32), t, 0)
    base = {"t": 250, "z": 50000, "q": 0.003, "ciwc": 1e-5, "clwc": 2e-5}
    pl = {}
    for i, (k, b) in enumerate(base.items()):
        pl[k] = np.stack([smooth(b * (1 + j / 10), abs(b) / 20, i + 1) for j in range(len(levels))], 1)
    return sfc, pl


def write(directory, res, times, levels, seed):
    lat, lon = grid(res)
    sfc, pl = fields(times, lat, lon, levels, seed)
    coords = {"time": times, "latitude": lat, "longitude": lon}
    a = xr.Dataset({k: (("time", "latitude", "longitude"), v) for k, v in sfc.items()}, coords=coords)
    b = xr.Dataset(
        {k: (("time", "level", "latitude", "longitude"), v) for k, v in pl.items()},
        coords=dict(coords, level=np.array(levels, dtype=np.int64)))
    for ds in (a, b):
        ds.latitude.attrs.update(standard_name="latitude", units="degrees_north")
        ds.longitude.attrs.update(standard_name="longitude", units="degrees_east")
        ds.time.attrs.update(standard_name="time")
    b.level.attrs.update(standard_name="air_pressure", units="hPa")
    a.to_netcdf(directory / "sfc.nc")
    b.to_netcdf(directory / "pl.nc")


def create(directory, name, end, levels):
    recipe = directory / f"{name}.yaml"
    recipe.write_text(f"""dates:
  start: 2016-01-01T00:00:00
  end: {end}
  frequency: 6h
  missing: ['{MISSING}']
input:
  join:
    - netcdf:
        path: {directory}/sfc.nc
        param: [2t, sp, tp, 10u, lsm, z, slt]
    - netcdf:
        path: {directory}/pl.nc
        param: [t, z, q, ciwc, clwc]
        level: {levels}
""")
    subprocess.run(
        [sys.executable, "-m", "anemoi.datasets", "create", str(recipe), str(directory / f"{name}.zarr"),
         "--overwrite"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def main():
    out = Path(sys.argv[1]).resolve()
    levels = [300, 500, 850]
    small = out / "grid25"
    small.mkdir(parents=True, exist_ok=True)
    write(small, 2.5, pd.date_range("2016-01-01", "2016-01-02T18:00", freq="6h"), levels, 1)
    create(small, "grid25", "2016-01-02T18:00:00", levels)
    fine = out / "fine"
    fine.mkdir(parents=True, exist_ok=True)
    write(fine, 1.40625, pd.date_range("2016-01-01", "2016-01-02T18:00", freq="6h"), levels, 3)
    create(fine, "fine", "2016-01-02T18:00:00", levels)
    write(out, 5.625, pd.date_range("2016-01-01", "2016-02-29T18:00", freq="6h"), levels, 0)
    create(out, "era", "2016-02-29T18:00:00", levels)
    print(out / "era.zarr")


if __name__ == "__main__":
    main()
