//! The arithmetic of Redis's geospatial commands, done as redis-server does it so that scores,
//! positions, distances and the set of members a search finds are the same to the last bit:
//!
//! - A position is a **52-bit score**: latitude (−85.05112878…85.05112878, Web Mercator's
//!   limits) and longitude (−180…180) each scaled to 26 bits, `offset × 2²⁶` truncated, and
//!   interleaved — latitude in the even bits, longitude in the odd ones. The score is stored as
//!   a sorted-set score (a double holds 52 bits exactly), so a geo key *is* a sorted set.
//! - A score **decodes** to the centre of its cell, clamped to the limits; that is what
//!   GEOPOS answers, and the point every distance is measured from.
//! - **Distances** are haversine on a sphere of 6,372,797.560856 m, in the order of
//!   operations redis-server uses (a search near the edge of its radius keeps or drops a
//!   member by the last bit of that sum).
//! - A **search** covers its shape with the cell of the centre at a step chosen from the
//!   radius and its eight neighbours (fewer where a neighbour lies wholly outside the shape's
//!   bounding box), each cell one score interval; members in them are kept when inside the
//!   shape. Their order without ASC/DESC is the order found: centre, N, S, E, W, NE, NW, SE, SW.

/// Latitudes a score can hold (Web Mercator's limits, EPSG:3857).
pub(super) const LAT_MIN: f64 = -85.051_128_78;
pub(super) const LAT_MAX: f64 = 85.051_128_78;
pub(super) const LON_MIN: f64 = -180.0;
pub(super) const LON_MAX: f64 = 180.0;
/// Bits per coordinate in a score.
const STEP_MAX: u8 = 26;
const EARTH_RADIUS_M: f64 = 6_372_797.560_856;
const MERCATOR_MAX: f64 = 20_037_726.37;
/// Degrees to radians, as `M_PI / 180.0` (not the longer literal: the last bit matters).
const D_R: f64 = std::f64::consts::PI / 180.0;

fn radians(degrees: f64) -> f64 {
    degrees * D_R
}

fn degrees(radians: f64) -> f64 {
    radians / D_R
}

/// A cell: the interleaved bits of its position at `step` bits per coordinate. The zero cell
/// (no bits, step 0) stands for a neighbour a search leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cell {
    bits: u64,
    step: u8,
}

impl Cell {
    const NONE: Cell = Cell { bits: 0, step: 0 };

    fn is_none(self) -> bool {
        self == Cell::NONE
    }

    /// The scores of the members inside the cell: from `min` included to `max` excluded.
    pub(super) fn scores(self) -> (f64, f64) {
        let shift = 52 - 2 * u32::from(self.step);
        (
            (self.bits << shift) as f64,
            ((self.bits + 1) << shift) as f64,
        )
    }
}

#[derive(Debug, Clone, Copy)]
struct Range {
    min: f64,
    max: f64,
}

const LON_RANGE: Range = Range {
    min: LON_MIN,
    max: LON_MAX,
};
const LAT_RANGE: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};

#[derive(Debug, Clone, Copy)]
struct Area {
    lon: Range,
    lat: Range,
}

/// Spreads the 32 bits of `even` over the even bits and those of `odd` over the odd ones.
fn interleave(even: u32, odd: u32) -> u64 {
    fn spread(value: u32) -> u64 {
        let mut x = u64::from(value);
        x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
        x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
        x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
        x = (x | (x << 2)) & 0x3333_3333_3333_3333;
        (x | (x << 1)) & 0x5555_5555_5555_5555
    }
    spread(even) | (spread(odd) << 1)
}

/// The even bits and the odd bits of `value`, each gathered into 32.
fn deinterleave(value: u64) -> (u32, u32) {
    fn gather(value: u64) -> u32 {
        let mut x = value & 0x5555_5555_5555_5555;
        x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
        x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
        x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
        x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
        x = (x | (x >> 16)) & 0x0000_0000_FFFF_FFFF;
        x as u32
    }
    (gather(value), gather(value >> 1))
}

/// Whether a position may be stored (GEOADD's check).
pub(super) fn valid(lon: f64, lat: f64) -> bool {
    (LON_MIN..=LON_MAX).contains(&lon) && (LAT_MIN..=LAT_MAX).contains(&lat)
}

/// The cell of a position at `step` bits per coordinate over the given ranges; `None` outside
/// the storable limits or the ranges.
fn encode_in(lon_range: Range, lat_range: Range, lon: f64, lat: f64, step: u8) -> Option<Cell> {
    if !valid(lon, lat)
        || lat < lat_range.min
        || lat > lat_range.max
        || lon < lon_range.min
        || lon > lon_range.max
    {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_offset = (lat - lat_range.min) / (lat_range.max - lat_range.min) * scale;
    let lon_offset = (lon - lon_range.min) / (lon_range.max - lon_range.min) * scale;
    Some(Cell {
        bits: interleave(lat_offset as u32, lon_offset as u32),
        step,
    })
}

fn encode(lon: f64, lat: f64, step: u8) -> Option<Cell> {
    encode_in(LON_RANGE, LAT_RANGE, lon, lat, step)
}

/// The score GEOADD stores for a valid position.
pub(super) fn score_of(lon: f64, lat: f64) -> Option<f64> {
    encode(lon, lat, STEP_MAX).map(|cell| cell.bits as f64)
}

fn decode(cell: Cell) -> Area {
    let (lat_cells, lon_cells) = deinterleave(cell.bits);
    let cells = (1u64 << cell.step) as f64;
    let lat_scale = LAT_MAX - LAT_MIN;
    let lon_scale = LON_MAX - LON_MIN;
    Area {
        lat: Range {
            min: LAT_MIN + (f64::from(lat_cells) / cells) * lat_scale,
            max: LAT_MIN + (f64::from(lat_cells.wrapping_add(1)) / cells) * lat_scale,
        },
        lon: Range {
            min: LON_MIN + (f64::from(lon_cells) / cells) * lon_scale,
            max: LON_MIN + (f64::from(lon_cells.wrapping_add(1)) / cells) * lon_scale,
        },
    }
}

/// The position a score stands for: the centre of its cell, within the limits.
pub(super) fn position(score: f64) -> (f64, f64) {
    let area = decode(Cell {
        bits: score as u64,
        step: STEP_MAX,
    });
    let lon = ((area.lon.min + area.lon.max) / 2.0).clamp(LON_MIN, LON_MAX);
    let lat = ((area.lat.min + area.lat.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

/// The standard 11-character geohash of a score (GEOHASH): its position encoded again over
/// latitudes −90…90, 52 bits in ten characters and a last one that is always `0`.
pub(super) fn geohash_text(score: f64) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (lon, lat) = position(score);
    let standard = Range {
        min: -90.0,
        max: 90.0,
    };
    let bits = encode_in(LON_RANGE, standard, lon, lat, STEP_MAX).map_or(0, |cell| cell.bits);
    (0..11)
        .map(|at| match at {
            10 => '0',
            _ => char::from(ALPHABET[((bits >> (52 - (at + 1) * 5)) & 0x1f) as usize]),
        })
        .collect()
}

/// Distance in metres along the north–south line between two latitudes.
fn latitude_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_M * (radians(lat2) - radians(lat1)).abs()
}

/// Haversine distance in metres between two positions (GEODIST).
pub(super) fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let v = ((radians(lon2) - radians(lon1)) / 2.0).sin();
    // The same meridian: only the latitudes differ (and the cheaper formula is exact here).
    if v == 0.0 {
        return latitude_distance(lat1, lat2);
    }
    let (lat1, lat2) = (radians(lat1), radians(lat2));
    let u = ((lat2 - lat1) / 2.0).sin();
    let a = u * u + lat1.cos() * lat2.cos() * v * v;
    2.0 * EARTH_RADIUS_M * a.sqrt().asin()
}

/// A search's shape, in its unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Shape {
    Radius(f64),
    Box { width: f64, height: f64 },
}

/// A search: its centre, its shape and the metres in one unit of the shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Search {
    pub(super) lon: f64,
    pub(super) lat: f64,
    pub(super) shape: Shape,
    pub(super) metres_per_unit: f64,
}

impl Search {
    /// Where a member's score puts it, and its distance in metres from the centre, when it
    /// is inside the shape.
    pub(super) fn within(&self, score: f64) -> Option<(f64, f64, f64)> {
        let (lon, lat) = position(score);
        let distance = match self.shape {
            Shape::Radius(radius) => {
                let distance = distance(self.lon, self.lat, lon, lat);
                (distance <= radius * self.metres_per_unit).then_some(distance)?
            }
            Shape::Box { width, height } => {
                let (width, height) = (width * self.metres_per_unit, height * self.metres_per_unit);
                if latitude_distance(lat, self.lat) > height / 2.0 {
                    return None;
                }
                if distance(lon, lat, self.lon, lat) > width / 2.0 {
                    return None;
                }
                distance(self.lon, self.lat, lon, lat)
            }
        };
        Some((lon, lat, distance))
    }

    /// The shape's half height and half width in metres.
    fn half_extents(&self) -> (f64, f64) {
        let (height, width) = match self.shape {
            Shape::Radius(radius) => (radius, radius),
            Shape::Box { width, height } => (height / 2.0, width / 2.0),
        };
        (height * self.metres_per_unit, width * self.metres_per_unit)
    }

    /// The bounding box of the shape: west, south, east, north.
    fn bounds(&self) -> [f64; 4] {
        let (height, width) = self.half_extents();
        let lat_delta = degrees(height / EARTH_RADIUS_M);
        let lon_delta_top = degrees(width / EARTH_RADIUS_M / radians(self.lat + lat_delta).cos());
        let lon_delta_bottom =
            degrees(width / EARTH_RADIUS_M / radians(self.lat - lat_delta).cos());
        // The wider edge is the one nearer the pole.
        let lon_delta = if self.lat < 0.0 {
            lon_delta_bottom
        } else {
            lon_delta_top
        };
        [
            self.lon - lon_delta,
            self.lat - lat_delta,
            self.lon + lon_delta,
            self.lat + lat_delta,
        ]
    }

    /// The cells to walk, in order: the centre's and its neighbours', each once.
    pub(super) fn cells(&self) -> Vec<Cell> {
        let [min_lon, min_lat, max_lon, max_lat] = self.bounds();
        let radius = match self.shape {
            Shape::Radius(radius) => radius,
            Shape::Box { width, height } => {
                ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
            }
        } * self.metres_per_unit;
        let mut step = estimate_step(radius, self.lat);
        let mut centre = encode(self.lon, self.lat, step).unwrap_or(Cell::NONE);
        let mut around = neighbours(centre);
        // A step too coarse near the edge of the cell: a neighbour does not reach the box.
        let [north, south, east, west] = [around[0], around[1], around[2], around[3]].map(decode);
        let too_coarse = north.lat.max < max_lat
            || south.lat.min > min_lat
            || east.lon.max < max_lon
            || west.lon.min > min_lon;
        if step > 1 && too_coarse {
            step -= 1;
            centre = encode(self.lon, self.lat, step).unwrap_or(Cell::NONE);
            around = neighbours(centre);
        }
        let area = decode(centre);
        if step >= 2 {
            // Leave out the neighbours wholly beyond the box.
            let [n, s, e, w, ne, nw, se, sw] = [0, 1, 2, 3, 4, 5, 6, 7];
            let mut drop = |sides: [usize; 3]| sides.iter().for_each(|&at| around[at] = Cell::NONE);
            if area.lat.min < min_lat {
                drop([s, sw, se]);
            }
            if area.lat.max > max_lat {
                drop([n, ne, nw]);
            }
            if area.lon.min < min_lon {
                drop([w, sw, nw]);
            }
            if area.lon.max > max_lon {
                drop([e, se, ne]);
            }
        }
        let mut cells = vec![centre];
        // A neighbour the same as the last one walked is skipped (a huge radius makes
        // neighbours repeat); as in redis-server, the centre is never compared.
        let mut last: Option<Cell> = None;
        for cell in around {
            if cell.is_none() || last == Some(cell) {
                continue;
            }
            cells.push(cell);
            last = Some(cell);
        }
        cells
    }
}

/// The bits per coordinate of the cells a search of `radius` metres around latitude `lat`
/// walks: cells about as wide as the radius, wider towards the poles.
fn estimate_step(mut radius: f64, lat: f64) -> u8 {
    if radius == 0.0 {
        return STEP_MAX;
    }
    let mut step: i32 = 1;
    while radius < MERCATOR_MAX {
        radius *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, i32::from(STEP_MAX)) as u8
}

/// The eight neighbours of a cell: N, S, E, W, NE, NW, SE, SW.
fn neighbours(cell: Cell) -> [Cell; 8] {
    let moved = |lon: i8, lat: i8| {
        let mut cell = cell;
        move_lon(&mut cell, lon);
        move_lat(&mut cell, lat);
        cell
    };
    [
        moved(0, 1),
        moved(0, -1),
        moved(1, 0),
        moved(-1, 0),
        moved(1, 1),
        moved(-1, 1),
        moved(1, -1),
        moved(-1, -1),
    ]
}

const ODD: u64 = 0xaaaa_aaaa_aaaa_aaaa;
const EVEN: u64 = 0x5555_5555_5555_5555;

/// One cell east (`+1`) or west (`-1`), wrapping around the world: longitude sits in the
/// odd bits, so adding with the even bits all set carries straight across them.
fn move_lon(cell: &mut Cell, direction: i8) {
    move_along(cell, direction, ODD, EVEN);
}

/// One cell north (`+1`) or south (`-1`): latitude sits in the even bits.
fn move_lat(cell: &mut Cell, direction: i8) {
    move_along(cell, direction, EVEN, ODD);
}

fn move_along(cell: &mut Cell, direction: i8, mine: u64, others: u64) {
    if direction == 0 {
        return;
    }
    let shift = 64 - 2 * u32::from(cell.step);
    let mut moving = cell.bits & mine;
    let kept = cell.bits & others;
    let filler = others >> shift;
    if direction > 0 {
        moving = moving.wrapping_add(filler + 1);
    } else {
        moving = (moving | filler).wrapping_sub(filler + 1);
    }
    moving &= mine >> shift;
    cell.bits = moving | kept;
}

/// A distance as redis-server writes one (GEODIST, WITHDIST): rounded to four decimals, as
/// the nearest integer of ten thousand times it (ties to even), then the point put in.
pub(super) fn distance_text(value: f64) -> String {
    let scaled = (value * 10_000.0).round_ties_even() as i64;
    let sign = if scaled < 0 { "-" } else { "" };
    let magnitude = scaled.unsigned_abs();
    format!("{sign}{}.{:04}", magnitude / 10_000, magnitude % 10_000)
}

/// A coordinate as redis-server writes one (GEOPOS, WITHCOORD): 17 decimals, the trailing
/// zeros and a bare point dropped.
pub(super) fn coordinate_text(value: f64) -> String {
    let mut text = format!("{value:.17}");
    if text.contains('.') {
        let kept = text.trim_end_matches('0').trim_end_matches('.').len();
        text.truncate(kept);
    }
    if text == "-0" {
        text = "0".into();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    // Palermo and Catania, the example of Redis's documentation, with what redis-server 7.0
    // answers for them (scores from ZSCORE, positions from GEOPOS, the hash from GEOHASH).
    const PALERMO: (f64, f64) = (13.361389, 38.115556);
    const CATANIA: (f64, f64) = (15.087269, 37.502669);

    #[test]
    fn scores_positions_and_hashes_are_redis_servers() {
        assert_eq!(
            score_of(PALERMO.0, PALERMO.1),
            Some(3_479_099_956_230_698.0)
        );
        assert_eq!(
            score_of(CATANIA.0, CATANIA.1),
            Some(3_479_447_370_796_909.0)
        );
        let (lon, lat) = position(3_479_099_956_230_698.0);
        assert_eq!(coordinate_text(lon), "13.36138933897018433");
        assert_eq!(coordinate_text(lat), "38.11555639549629859");
        assert_eq!(geohash_text(3_479_099_956_230_698.0), "sqc8b49rny0");
        assert_eq!(geohash_text(3_479_447_370_796_909.0), "sqdtr74hyu0");
        assert_eq!(score_of(200.0, 10.0), None);
        assert_eq!(score_of(10.0, 86.0), None);
        assert!(score_of(180.0, LAT_MAX).is_some());
    }

    #[test]
    fn distances_are_written_as_redis_server_writes_them() {
        let (a, b) = (
            position(3_479_099_956_230_698.0),
            position(3_479_447_370_796_909.0),
        );
        let metres = distance(a.0, a.1, b.0, b.1);
        assert_eq!(distance_text(metres), "166274.1516");
        assert_eq!(distance_text(metres / 1000.0), "166.2742");
        assert_eq!(distance_text(metres / 1609.34), "103.3182");
        assert_eq!(distance_text(0.0), "0.0000");
        assert_eq!(distance_text(0.00004), "0.0000");
        assert_eq!(distance_text(0.5), "0.5000");
        assert_eq!(distance_text(12.34565), "12.3456");
    }

    #[test]
    fn coordinates_drop_trailing_zeros() {
        assert_eq!(coordinate_text(1.5), "1.5");
        assert_eq!(coordinate_text(-180.0), "-180");
        assert_eq!(coordinate_text(-0.0), "0");
    }

    #[test]
    fn interleaving_is_undone() {
        for (even, odd) in [
            (0, 0),
            (1, 0),
            (0, 1),
            (0x03ff_ffff, 0x0123_4567),
            (u32::MAX, 7),
        ] {
            assert_eq!(deinterleave(interleave(even, odd)), (even, odd));
        }
        assert_eq!(interleave(1, 0), 1);
        assert_eq!(interleave(0, 1), 2);
    }

    #[test]
    fn neighbours_are_the_adjacent_cells() {
        let centre = encode(PALERMO.0, PALERMO.1, 10).unwrap();
        let area = decode(centre);
        let [n, s, e, w, ne, nw, se, sw] = neighbours(centre).map(decode);
        assert_eq!(n.lat.min, area.lat.max);
        assert_eq!(s.lat.max, area.lat.min);
        assert_eq!(e.lon.min, area.lon.max);
        assert_eq!(w.lon.max, area.lon.min);
        assert_eq!((ne.lat.min, ne.lon.min), (area.lat.max, area.lon.max));
        assert_eq!((nw.lat.min, nw.lon.max), (area.lat.max, area.lon.min));
        assert_eq!((se.lat.max, se.lon.min), (area.lat.min, area.lon.max));
        assert_eq!((sw.lat.max, sw.lon.max), (area.lat.min, area.lon.min));
        // East of the last column is the first one.
        let edge = encode(179.99, 0.0, 4).unwrap();
        assert_eq!(decode(neighbours(edge)[2]).lon.min, LON_MIN);
    }

    #[test]
    fn a_search_walks_cells_that_cover_its_shape() {
        let search = Search {
            lon: 15.0,
            lat: 37.0,
            shape: Shape::Radius(200.0),
            metres_per_unit: 1000.0,
        };
        let cells = search.cells();
        assert!(!cells.is_empty() && cells.len() <= 9);
        for point in [PALERMO, CATANIA] {
            let score = score_of(point.0, point.1).unwrap();
            assert!(cells.iter().any(|cell| {
                let (min, max) = cell.scores();
                (min..max).contains(&score)
            }));
            assert!(search.within(score).is_some());
        }
        let narrow = Search {
            shape: Shape::Radius(100.0),
            ..search
        };
        let palermo = score_of(PALERMO.0, PALERMO.1).unwrap();
        assert!(narrow.within(palermo).is_none());
        let boxed = Search {
            shape: Shape::Box {
                width: 400.0,
                height: 400.0,
            },
            ..search
        };
        assert!(boxed.within(palermo).is_some());
    }

    #[test]
    fn steps_follow_the_radius_and_the_latitude() {
        assert_eq!(estimate_step(0.0, 0.0), 26);
        assert!(estimate_step(100.0, 0.0) > estimate_step(100_000.0, 0.0));
        assert_eq!(estimate_step(100.0, 70.0) + 1, estimate_step(100.0, 0.0));
        assert_eq!(estimate_step(100.0, 85.0) + 2, estimate_step(100.0, 0.0));
        assert_eq!(estimate_step(1e9, 0.0), 1);
    }
}
