//! Geospatial commands: GEOADD, GEOPOS, GEOHASH, GEODIST, GEOSEARCH, GEOSEARCHSTORE and the
//! older GEORADIUS, GEORADIUSBYMEMBER (with STORE/STOREDIST) and their `_RO` forms. As in
//! Redis, a geo key is a sorted set whose scores are 52-bit geohashes (`geohash.rs` does the
//! arithmetic), so ZRANGE, ZREM and ZCARD work on it, and what these commands store is as
//! durable as any sorted-set change (fsynced before the reply). Options are read in
//! redis-server's order, so an invalid call gets the error redis-server would give first.

use bytes::Bytes;
use omnibus_engine::keys::{KeyKind, SetCondition, ZAddOptions, ZSetView};

use super::arguments::{integer, is, SYNTAX_ERROR};
use super::geohash::{self, Search, Shape};
use super::lists::{change, check_not_stream, read};
use super::strings::map;
use super::zset_ranges::{score, NOT_A_FLOAT};
use crate::codec::Reply;
use crate::session::{Session, Step};

const BAD_MEMBER: &str = "ERR could not decode requested zset member";
const BAD_UNIT: &str = "ERR unsupported unit provided. please use M, KM, FT, MI";

/// Runs a geo command; `words` start with the command's name as the client spelled it (two
/// errors quote it).
pub(super) fn run(session: &mut Session, name: &str, words: &[Bytes]) -> Step {
    let arguments = &words[1..];
    let result = match name {
        "geoadd" => geoadd(session, arguments),
        "geopos" | "geohash" => positions(session, name, arguments),
        "geodist" => geodist(session, arguments),
        _ => search(session, name, words),
    };
    result.unwrap_or_else(Step::from)
}

/// GEOADD key [NX|XX] [CH] longitude latitude member [… …].
fn geoadd(session: &Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let key = &arguments[0];
    let (mut nx, mut xx, mut ch) = (false, false, false);
    let mut at = 1;
    while let Some(word) = arguments.get(at) {
        match () {
            _ if is(word, "nx") => nx = true,
            _ if is(word, "xx") => xx = true,
            _ if is(word, "ch") => ch = true,
            _ => break,
        }
        at += 1;
    }
    let triples = &arguments[at..];
    if triples.is_empty() || !triples.len().is_multiple_of(3) || (nx && xx) {
        return Err(Reply::error(SYNTAX_ERROR));
    }
    let mut pairs = Vec::with_capacity(triples.len() / 3);
    for triple in triples.chunks(3) {
        let (lon, lat) = coordinates(&triple[0], &triple[1])?;
        let score = geohash::score_of(lon, lat).ok_or_else(|| invalid_pair(lon, lat))?;
        pairs.push((score, triple[2].clone()));
    }
    let options = ZAddOptions {
        condition: match (nx, xx) {
            (true, _) => SetCondition::IfAbsent,
            (_, true) => SetCondition::IfPresent,
            _ => SetCondition::Always,
        },
        ..ZAddOptions::default()
    };
    super::zsets::add(session, key, pairs, options, ch)
}

/// A longitude and a latitude a position may have.
fn coordinates(lon: &[u8], lat: &[u8]) -> Result<(f64, f64), Reply> {
    let lon = score(lon).ok_or_else(|| Reply::error(NOT_A_FLOAT))?;
    let lat = score(lat).ok_or_else(|| Reply::error(NOT_A_FLOAT))?;
    if !geohash::valid(lon, lat) {
        return Err(invalid_pair(lon, lat));
    }
    Ok((lon, lat))
}

fn invalid_pair(lon: f64, lat: f64) -> Reply {
    Reply::error(format!(
        "ERR invalid longitude,latitude pair {lon:.6},{lat:.6}"
    ))
}

/// Metres in one unit.
fn unit(word: &Bytes) -> Result<f64, Reply> {
    match () {
        _ if is(word, "m") => Ok(1.0),
        _ if is(word, "km") => Ok(1000.0),
        _ if is(word, "ft") => Ok(0.3048),
        _ if is(word, "mi") => Ok(1609.34),
        _ => Err(Reply::error(BAD_UNIT)),
    }
}

/// A coordinate pair as GEOPOS and WITHCOORD answer it.
fn coordinate_pair(lon: f64, lat: f64) -> Reply {
    Reply::Array(vec![
        Reply::DoubleText(geohash::coordinate_text(lon)),
        Reply::DoubleText(geohash::coordinate_text(lat)),
    ])
}

/// GEOPOS / GEOHASH key member …: one answer per member, a nil for a missing one.
fn positions(session: &Session, name: &str, arguments: &[Bytes]) -> Result<Step, Reply> {
    let key = &arguments[0];
    let members = &arguments[1..];
    let geopos = name == "geopos";
    read(session, key, |keys| {
        keys.zset_look(key, |set| {
            let answers = members.iter().map(|member| {
                match (set.and_then(|set| set.score(member)), geopos) {
                    (None, true) => Reply::NullArray,
                    (None, false) => Reply::Null,
                    (Some(score), true) => {
                        let (lon, lat) = geohash::position(score);
                        coordinate_pair(lon, lat)
                    }
                    (Some(score), false) => Reply::text(&geohash::geohash_text(score)),
                }
            });
            Reply::Array(answers.collect())
        })
    })
}

/// GEODIST key member1 member2 [M|KM|FT|MI].
fn geodist(session: &Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let metres_per_unit = match &arguments[3..] {
        [] => 1.0,
        [word] => unit(word)?,
        _ => return Err(Reply::error(SYNTAX_ERROR)),
    };
    let key = &arguments[0];
    read(session, key, |keys| {
        keys.zset_look(key, |set| {
            let scores =
                set.and_then(|set| Some((set.score(&arguments[1])?, set.score(&arguments[2])?)));
            scores.map_or(Reply::Null, |(a, b)| {
                let ((lon1, lat1), (lon2, lat2)) = (geohash::position(a), geohash::position(b));
                let metres = geohash::distance(lon1, lat1, lon2, lat2);
                Reply::text(&geohash::distance_text(metres / metres_per_unit))
            })
        })
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Found,
    Nearest,
    Farthest,
}

/// Where a search is centred.
#[derive(Debug, Clone)]
enum Centre {
    At(f64, f64),
    Member(Bytes),
}

/// A parsed GEOSEARCH / GEORADIUS call.
#[derive(Debug)]
struct Request {
    centre: Centre,
    shape: Shape,
    metres_per_unit: f64,
    with_dist: bool,
    with_hash: bool,
    with_coord: bool,
    order: Order,
    /// At most this many answers (0: all).
    count: usize,
    /// With COUNT: stop at the first `count` found instead of the nearest ones.
    any: bool,
    /// Where the answer is stored, and whether as distances (STOREDIST) or positions.
    store: Option<(Bytes, bool)>,
}

/// GEOSEARCH, GEOSEARCHSTORE, GEORADIUS[_RO], GEORADIUSBYMEMBER[_RO].
fn search(session: &Session, name: &str, words: &[Bytes]) -> Result<Step, Reply> {
    let store_form = name == "geosearchstore";
    let source = &words[if store_form { 2 } else { 1 }];
    check_not_stream(session, source)?;
    let exists = match session.keys.kind(source) {
        None => false,
        Some(KeyKind::SortedSet) => true,
        Some(_) => return Err(Reply::error(super::streams::WRONGTYPE)),
    };
    let request = parse(session, name, words, exists)?;
    match &request.store {
        Some((destination, _)) => store(session, destination, source, &request, exists),
        // Nothing to search: an empty answer.
        None if !exists => Ok(Reply::Array(Vec::new()).into()),
        None => read(session, source, |keys| {
            keys.zset_look(source, |set| match found(set, &request) {
                Ok(points) => answer(points, &request),
                Err(refusal) => refusal,
            })
        }),
    }
}

/// The members found stored in `destination` (none, when the source is missing: the
/// destination is deleted), with their positions or their distances as scores.
fn store(
    session: &Session,
    destination: &Bytes,
    source: &Bytes,
    request: &Request,
    exists: bool,
) -> Result<Step, Reply> {
    let by_distance = request.store.as_ref().is_some_and(|(_, dist)| *dist);
    let stored = session.keys.zset_store_picked(destination, source, |set| {
        let points = if exists {
            found(set, request)?
        } else {
            Vec::new()
        };
        Ok(points
            .into_iter()
            .map(|point| {
                let score = match by_distance {
                    true => point.distance / request.metres_per_unit,
                    false => point.score,
                };
                (point.member, score)
            })
            .collect())
    });
    match stored {
        Ok(Err(refusal)) => Err(refusal),
        Ok(Ok(durable)) => change(Ok(map(durable, |n| Reply::Integer(n as i64)))),
        Err(error) => change(Err(error)),
    }
}

/// One member a search found.
struct Point {
    member: Bytes,
    score: f64,
    lon: f64,
    lat: f64,
    /// Metres from the centre.
    distance: f64,
}

/// The members inside the request's shape, ordered and counted as asked.
fn found(set: Option<ZSetView<'_>>, request: &Request) -> Result<Vec<Point>, Reply> {
    let Some(set) = set else {
        return Ok(Vec::new());
    };
    let (lon, lat) = match &request.centre {
        Centre::At(lon, lat) => (*lon, *lat),
        Centre::Member(member) => {
            geohash::position(set.score(member).ok_or_else(|| Reply::error(BAD_MEMBER))?)
        }
    };
    let search = Search {
        lon,
        lat,
        shape: request.shape,
        metres_per_unit: request.metres_per_unit,
    };
    let limit = if request.any { request.count } else { 0 };
    let full = |points: &Vec<Point>| limit != 0 && points.len() >= limit;
    let mut points = Vec::new();
    for cell in search.cells() {
        if full(&points) {
            break;
        }
        let (min, max) = cell.scores();
        for (score, member) in set.from_score(min) {
            if score >= max {
                break;
            }
            if let Some((lon, lat, distance)) = search.within(score) {
                points.push(Point {
                    member: member.clone(),
                    score,
                    lon,
                    lat,
                    distance,
                });
            }
            if full(&points) {
                break;
            }
        }
    }
    // A stable sort: members at one distance stay in the order found.
    match request.order {
        Order::Found => {}
        Order::Nearest => points.sort_by(|a, b| a.distance.total_cmp(&b.distance)),
        Order::Farthest => points.sort_by(|a, b| b.distance.total_cmp(&a.distance)),
    }
    if request.count != 0 {
        points.truncate(request.count);
    }
    Ok(points)
}

/// The members found, each alone or with its distance, hash and coordinates as asked.
fn answer(points: Vec<Point>, request: &Request) -> Reply {
    let plain = !(request.with_dist || request.with_hash || request.with_coord);
    let items = points.into_iter().map(|point| {
        if plain {
            return Reply::Bulk(point.member);
        }
        let mut item = vec![Reply::Bulk(point.member)];
        if request.with_dist {
            let distance = point.distance / request.metres_per_unit;
            item.push(Reply::text(&geohash::distance_text(distance)));
        }
        if request.with_hash {
            item.push(Reply::Integer(point.score as i64));
        }
        if request.with_coord {
            item.push(coordinate_pair(point.lon, point.lat));
        }
        Reply::Array(item)
    });
    Reply::Array(items.collect())
}

/// Reads a search's words as redis-server does. `exists`: whether the source key holds a
/// sorted set; when it does not, a member to centre on is not looked for, and
/// GEORADIUSBYMEMBER does not read its radius (the answer is empty whatever they are).
fn parse(session: &Session, name: &str, words: &[Bytes], exists: bool) -> Result<Request, Reply> {
    let search_form = name.starts_with("geosearch");
    let store_form = name == "geosearchstore";
    let by_member = name.starts_with("georadiusbymember");
    let read_only = name.ends_with("_ro");
    let source = &words[if store_form { 2 } else { 1 }];
    let mut request = Request {
        centre: Centre::At(0.0, 0.0),
        shape: Shape::Radius(0.0),
        metres_per_unit: 1.0,
        with_dist: false,
        with_hash: false,
        with_coord: false,
        order: Order::Found,
        count: 0,
        any: false,
        store: store_form.then(|| (words[1].clone(), false)),
    };
    let member_known = |member: &Bytes| -> Result<(), Reply> {
        let known = session
            .keys
            .zset_scores(source, std::slice::from_ref(member))
            .map_err(|_| Reply::error(super::streams::WRONGTYPE))?;
        match known.first() {
            Some(Some(_)) => Ok(()),
            _ => Err(Reply::error(BAD_MEMBER)),
        }
    };
    let base = match () {
        _ if search_form => {
            if store_form {
                3
            } else {
                2
            }
        }
        _ if by_member => {
            if exists {
                member_known(&words[2])?;
                request.centre = Centre::Member(words[2].clone());
                let (radius, metres) = radius(&words[3], &words[4])?;
                request.shape = Shape::Radius(radius);
                request.metres_per_unit = metres;
            }
            5
        }
        _ => {
            let (lon, lat) = coordinates(&words[2], &words[3])?;
            request.centre = Centre::At(lon, lat);
            let (radius, metres) = radius(&words[4], &words[5])?;
            request.shape = Shape::Radius(radius);
            request.metres_per_unit = metres;
            6
        }
    };
    let (mut from_member, mut from_lonlat, mut by_radius, mut by_box) =
        (false, false, false, false);
    let options = &words[base..];
    let mut at = 0;
    while at < options.len() {
        let word = &options[at];
        let left = options.len() - at - 1;
        match () {
            _ if is(word, "withdist") => request.with_dist = true,
            _ if is(word, "withhash") => request.with_hash = true,
            _ if is(word, "withcoord") => request.with_coord = true,
            _ if is(word, "any") => request.any = true,
            _ if is(word, "asc") => request.order = Order::Nearest,
            _ if is(word, "desc") => request.order = Order::Farthest,
            _ if is(word, "count") && left >= 1 => {
                let count = integer(&options[at + 1])?;
                if count <= 0 {
                    return Err(Reply::error("ERR COUNT must be > 0"));
                }
                request.count = usize::try_from(count).unwrap_or(usize::MAX);
                at += 1;
            }
            _ if (is(word, "store") || is(word, "storedist"))
                && left >= 1
                && !read_only
                && !search_form =>
            {
                request.store = Some((options[at + 1].clone(), is(word, "storedist")));
                at += 1;
            }
            _ if is(word, "storedist") && store_form => {
                request.store = Some((words[1].clone(), true));
            }
            _ if is(word, "frommember") && left >= 1 && search_form && !from_lonlat => {
                if exists {
                    member_known(&options[at + 1])?;
                }
                request.centre = Centre::Member(options[at + 1].clone());
                from_member = true;
                at += 1;
            }
            _ if is(word, "fromlonlat") && left >= 2 && search_form && !from_member => {
                let (lon, lat) = coordinates(&options[at + 1], &options[at + 2])?;
                request.centre = Centre::At(lon, lat);
                from_lonlat = true;
                at += 2;
            }
            _ if is(word, "byradius") && left >= 2 && search_form && !by_box => {
                let (radius, metres) = radius(&options[at + 1], &options[at + 2])?;
                request.shape = Shape::Radius(radius);
                request.metres_per_unit = metres;
                by_radius = true;
                at += 2;
            }
            _ if is(word, "bybox") && left >= 3 && search_form && !by_radius => {
                let width = score(&options[at + 1])
                    .ok_or_else(|| Reply::error("ERR need numeric width"))?;
                let height = score(&options[at + 2])
                    .ok_or_else(|| Reply::error("ERR need numeric height"))?;
                if width < 0.0 || height < 0.0 {
                    return Err(Reply::error("ERR height or width cannot be negative"));
                }
                request.metres_per_unit = unit(&options[at + 3])?;
                request.shape = Shape::Box { width, height };
                by_box = true;
                at += 3;
            }
            _ => return Err(Reply::error(SYNTAX_ERROR)),
        }
        at += 1;
    }
    if request.store.is_some() && (request.with_dist || request.with_hash || request.with_coord) {
        let which = if store_form {
            "GEOSEARCHSTORE"
        } else {
            "STORE option in GEORADIUS"
        };
        return Err(Reply::error(format!(
            "ERR {which} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        )));
    }
    let typed = String::from_utf8_lossy(&words[0]);
    if search_form && !(from_member || from_lonlat) {
        return Err(Reply::error(format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {typed}"
        )));
    }
    if search_form && !(by_radius || by_box) {
        return Err(Reply::error(format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {typed}"
        )));
    }
    if request.any && request.count == 0 {
        return Err(Reply::error("ERR the ANY argument requires COUNT argument"));
    }
    // COUNT alone means the nearest ones.
    if request.count != 0 && request.order == Order::Found && !request.any {
        request.order = Order::Nearest;
    }
    Ok(request)
}

/// A radius and its unit: the radius in that unit and the metres per unit.
fn radius(value: &[u8], unit_word: &Bytes) -> Result<(f64, f64), Reply> {
    let radius = score(value).ok_or_else(|| Reply::error("ERR need numeric radius"))?;
    if radius < 0.0 {
        return Err(Reply::error("ERR radius cannot be negative"));
    }
    Ok((radius, unit(unit_word)?))
}
