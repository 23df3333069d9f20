// WGS-84 <-> GCJ-02 for the console's map (the same formula as citybrain/geo/crs.py): the
// platform's data are WGS-84; most Chinese tile servers draw GCJ-02, so with such tiles the
// data are shifted onto them for display and a click is shifted back before it is sent.

const A = 6378245.0;
const EE = 0.00669342162296594323;

const inChina = (lon, lat) => lon > 72.004 && lon < 137.8347 && lat > 0.8293 && lat < 55.8271;

function offsets(lon, lat) {
  const x = lon - 105.0, y = lat - 35.0, pi = Math.PI;
  let dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
  dlat += (20.0 * Math.sin(6.0 * x * pi) + 20.0 * Math.sin(2.0 * x * pi)) * 2.0 / 3.0;
  dlat += (20.0 * Math.sin(y * pi) + 40.0 * Math.sin(y / 3.0 * pi)) * 2.0 / 3.0;
  dlat += (160.0 * Math.sin(y / 12.0 * pi) + 320 * Math.sin(y * pi / 30.0)) * 2.0 / 3.0;
  let dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
  dlon += (20.0 * Math.sin(6.0 * x * pi) + 20.0 * Math.sin(2.0 * x * pi)) * 2.0 / 3.0;
  dlon += (20.0 * Math.sin(x * pi) + 40.0 * Math.sin(x / 3.0 * pi)) * 2.0 / 3.0;
  dlon += (150.0 * Math.sin(x / 12.0 * pi) + 300.0 * Math.sin(x / 30.0 * pi)) * 2.0 / 3.0;
  const radlat = lat / 180.0 * pi;
  const magic = 1 - EE * Math.sin(radlat) ** 2;
  const sqrtmagic = Math.sqrt(magic);
  dlat = (dlat * 180.0) / ((A * (1 - EE)) / (magic * sqrtmagic) * pi);
  dlon = (dlon * 180.0) / (A / sqrtmagic * Math.cos(radlat) * pi);
  return [dlon, dlat];
}

/** [lon, lat] WGS-84 -> GCJ-02. */
export function wgsToGcj(lon, lat) {
  if (!inChina(lon, lat)) return [lon, lat];
  const [dlon, dlat] = offsets(lon, lat);
  return [lon + dlon, lat + dlat];
}

/** [lon, lat] GCJ-02 -> WGS-84, by fixed-point iteration (well under a centimetre). */
export function gcjToWgs(lon, lat) {
  let x = lon, y = lat;
  for (let i = 0; i < 30; i++) {
    const [fx, fy] = wgsToGcj(x, y);
    const ex = fx - lon, ey = fy - lat;
    x -= ex; y -= ey;
    if (Math.max(Math.abs(ex), Math.abs(ey)) < 1e-10) break;
  }
  return [x, y];
}

/** How the map shows the data: identity, or shifted onto GCJ-02 tiles. */
export function projection(tilesCrs, hasTiles) {
  const shift = hasTiles && String(tilesCrs).toUpperCase().replace("_", "-") === "GCJ-02";
  return {
    shift,
    // WGS-84 [lon, lat] -> the map's [lat, lon]
    toMap: (lon, lat) => { const [x, y] = shift ? wgsToGcj(lon, lat) : [lon, lat]; return [y, x]; },
    // the map's {lat, lng} -> WGS-84 [lon, lat]
    fromMap: (latlng) => (shift ? gcjToWgs(latlng.lng, latlng.lat) : [latlng.lng, latlng.lat]),
  };
}
