//! The libraries Redis gives scripts beside Lua's own: `cjson` (JSON), `cmsgpack`
//! (MessagePack) and `bit` (32-bit operations), with the encodings Redis's builds of
//! lua-cjson, lua-cmsgpack and LuaBitOp choose, because scripts and the clients reading what
//! they wrote depend on them (job-queue libraries pack their options with MessagePack and
//! keep job data as JSON). JSON is parsed by `serde_json`; writing JSON and both directions of
//! MessagePack are by hand: the exact forms (numbers as `%.14g`, `/` escaped, integers in
//! their smallest MessagePack form, a float32 when it holds the number exactly) are what no
//! library writes for us.

use mlua::{LightUserData, Lua, MultiValue, Table, Value};

/// Deepest nesting `cjson` and `cmsgpack` follow (lua-cjson allows 1,000; each level is a
/// frame on the door thread's stack, and no job's data nests a hundred deep).
const DEPTH_MAX: usize = 128;
/// Most bytes one `cjson.encode` or `cmsgpack.pack` writes. Also what bounds their time: a
/// table holding the same table twice at every level is walked 2^depth times, and the
/// script's time limit counts Lua instructions, not these. (A table that holds itself is
/// refused at once: see `Path`.)
const OUTPUT_MAX: usize = 64 << 20;

/// The tables being written, outermost first: one met again inside itself is a cycle.
type Path = Vec<*const std::ffi::c_void>;

fn enter(path: &mut Path, table: &Table) -> Result<(), String> {
    let pointer = table.to_pointer();
    if path.contains(&pointer) {
        return Err("Cannot serialise: a table holds itself".into());
    }
    path.push(pointer);
    Ok(())
}

fn too_large() -> String {
    format!("Cannot serialise: the result would be over {OUTPUT_MAX} bytes")
}

/// Installs `cjson`, `cmsgpack` and `bit` as globals of `lua`.
pub(super) fn install(lua: &Lua) -> mlua::Result<()> {
    let globals = lua.globals();
    let cjson = lua.create_table()?;
    cjson.set("null", null())?;
    cjson.set(
        "encode",
        lua.create_function(|lua, value: Value| {
            let mut out = Vec::new();
            encode_json(&value, &mut Path::new(), &mut out).map_err(mlua::Error::RuntimeError)?;
            lua.create_string(&out)
        })?,
    )?;
    cjson.set(
        "decode",
        lua.create_function(|lua, text: mlua::String| {
            let parsed: serde_json::Value = serde_json::from_slice(&text.as_bytes())
                .map_err(|e| mlua::Error::RuntimeError(format!("Expected value: {e}")))?;
            json_to_lua(lua, parsed)
        })?,
    )?;
    globals.set("cjson", cjson)?;

    let cmsgpack = lua.create_table()?;
    cmsgpack.set(
        "pack",
        lua.create_function(|lua, values: MultiValue| {
            let mut out = Vec::new();
            for value in values.iter() {
                pack(value, &mut Path::new(), &mut out).map_err(mlua::Error::RuntimeError)?;
            }
            lua.create_string(&out)
        })?,
    )?;
    cmsgpack.set(
        "unpack",
        lua.create_function(|lua, data: mlua::String| {
            let data = data.as_bytes();
            let mut reader = Reader { data: &data, at: 0 };
            let mut values = Vec::new();
            while reader.at < data.len() {
                values.push(reader.value(lua, 0)?);
            }
            Ok(MultiValue::from_vec(values))
        })?,
    )?;
    globals.set("cmsgpack", cmsgpack)?;

    globals.set("bit", bit_library(lua)?)?;
    Ok(())
}

/// `cjson.null`: a light userdata holding NULL, as lua-cjson's.
fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Integer(n) => Some(*n as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

/// A number as C's `%.14g` writes it (lua-cjson's default precision).
fn number_text(number: f64) -> String {
    if number == number.trunc() && number.abs() < 1e14 {
        return format!("{}", number as i64);
    }
    let scientific = format!("{number:.13e}");
    let (mantissa, exponent) = scientific.split_once('e').expect("{:e} has an exponent");
    let exponent: i32 = exponent.parse().expect("an exponent");
    if !(-4..14).contains(&exponent) {
        let mantissa = trim_fraction(mantissa);
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    let decimals = (13 - exponent).max(0) as usize;
    trim_fraction(&format!("{number:.decimals$}")).to_string()
}

fn trim_fraction(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

/// The length of `table` as an array (1..n with every key a positive integer), `None` when it
/// is not one; lua-cjson writes arrays with holes up to twice as long as their count.
fn array_length(table: &Table) -> mlua::Result<Option<usize>> {
    let (mut largest, mut count) = (0usize, 0usize);
    for pair in table.clone().pairs::<Value, Value>() {
        let (key, _) = pair?;
        match number_of(&key) {
            Some(n) if n >= 1.0 && n == n.trunc() && n <= u32::MAX as f64 => {
                largest = largest.max(n as usize);
                count += 1;
            }
            _ => return Ok(None),
        }
    }
    if count == 0 {
        return Ok(None);
    }
    if largest > count * 2 && largest > 10 {
        return Err(mlua::Error::RuntimeError(
            "Cannot serialise table: excessively sparse array".into(),
        ));
    }
    Ok(Some(largest))
}

fn encode_json(value: &Value, path: &mut Path, out: &mut Vec<u8>) -> Result<(), String> {
    if out.len() > OUTPUT_MAX {
        return Err(too_large());
    }
    match value {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(data) if data.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(true) => out.extend_from_slice(b"true"),
        Value::Boolean(false) => out.extend_from_slice(b"false"),
        Value::Integer(_) | Value::Number(_) => {
            let number = number_of(value).expect("a number");
            if !number.is_finite() {
                return Err("Cannot serialise number: must not be NaN or Inf".into());
            }
            out.extend_from_slice(number_text(number).as_bytes());
        }
        Value::String(text) => encode_json_string(&text.as_bytes(), out),
        Value::Table(table) => {
            if path.len() >= DEPTH_MAX {
                return Err(format!(
                    "Cannot serialise, excessive nesting ({})",
                    path.len() + 1
                ));
            }
            enter(path, table)?;
            match array_length(table).map_err(|e| e.to_string())? {
                Some(length) => {
                    out.push(b'[');
                    for index in 1..=length {
                        if index > 1 {
                            out.push(b',');
                        }
                        let item: Value = table.raw_get(index).map_err(|e| e.to_string())?;
                        encode_json(&item, path, out)?;
                    }
                    out.push(b']');
                }
                None => {
                    out.push(b'{');
                    let mut first = true;
                    for pair in table.clone().pairs::<Value, Value>() {
                        let (key, item) = pair.map_err(|e| e.to_string())?;
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        match &key {
                            Value::String(name) => encode_json_string(&name.as_bytes(), out),
                            key => match number_of(key) {
                                Some(n) => encode_json_string(number_text(n).as_bytes(), out),
                                None => {
                                    return Err("Cannot serialise table: table key must be a \
                                                number or string"
                                        .into())
                                }
                            },
                        }
                        out.push(b':');
                        encode_json(&item, path, out)?;
                    }
                    out.push(b'}');
                }
            }
            path.pop();
        }
        other => {
            return Err(format!(
                "Cannot serialise {}: type not supported",
                other.type_name()
            ))
        }
    }
    Ok(())
}

/// A JSON string as lua-cjson escapes it: control characters, `"`, `\` and `/`; other bytes
/// as they are.
fn encode_json_string(text: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &byte in text {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0..=0x1f | 0x7f => out.extend_from_slice(format!("\\u{byte:04x}").as_bytes()),
            byte => out.push(byte),
        }
    }
    out.push(b'"');
}

fn json_to_lua(lua: &Lua, value: serde_json::Value) -> mlua::Result<Value> {
    Ok(match value {
        serde_json::Value::Null => null(),
        serde_json::Value::Bool(flag) => Value::Boolean(flag),
        serde_json::Value::Number(number) => Value::Number(number.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(text) => Value::String(lua.create_string(&text)?),
        serde_json::Value::Array(items) => {
            let table = lua.create_table_with_capacity(items.len(), 0)?;
            for (index, item) in items.into_iter().enumerate() {
                table.raw_set(index + 1, json_to_lua(lua, item)?)?;
            }
            Value::Table(table)
        }
        serde_json::Value::Object(fields) => {
            let table = lua.create_table_with_capacity(0, fields.len())?;
            for (name, item) in fields {
                table.raw_set(name, json_to_lua(lua, item)?)?;
            }
            Value::Table(table)
        }
    })
}

/// Appends `value` in MessagePack as lua-cmsgpack writes it; a table nested deeper than
/// [`DEPTH_MAX`], or a value MessagePack has no form for (a function), is written as nil. A
/// table inside itself is refused (lua-cmsgpack writes nil 16 levels down).
fn pack(value: &Value, path: &mut Path, out: &mut Vec<u8>) -> Result<(), String> {
    if out.len() > OUTPUT_MAX {
        return Err(too_large());
    }
    match value {
        Value::Boolean(true) => out.push(0xc3),
        Value::Boolean(false) => out.push(0xc2),
        Value::Integer(_) | Value::Number(_) => {
            pack_number(number_of(value).expect("a number"), out)
        }
        Value::String(text) => pack_bytes(&text.as_bytes(), out),
        Value::Table(table) if path.len() < DEPTH_MAX => {
            enter(path, table)?;
            pack_table(table, path, out)?;
            path.pop();
        }
        _ => out.push(0xc0),
    }
    Ok(())
}

fn pack_table(table: &Table, path: &mut Path, out: &mut Vec<u8>) -> Result<(), String> {
    // lua-cmsgpack: an array when its keys are exactly 1..n (an empty table included).
    let length = table.raw_len();
    let count = table.clone().pairs::<Value, Value>().count();
    if count == length {
        pack_header(length, [0x90, 0xdc, 0xdd], 0x0f, out);
        for index in 1..=length {
            let item: Value = table.raw_get(index).map_err(|e| e.to_string())?;
            pack(&item, path, out)?;
        }
        return Ok(());
    }
    pack_header(count, [0x80, 0xde, 0xdf], 0x0f, out);
    for pair in table.clone().pairs::<Value, Value>() {
        let (key, item) = pair.map_err(|e| e.to_string())?;
        pack(&key, path, out)?;
        pack(&item, path, out)?;
    }
    Ok(())
}

/// A fix form (up to `fix_max` items), else the 16- or 32-bit length form.
fn pack_header(length: usize, [fix, wide16, wide32]: [u8; 3], fix_max: usize, out: &mut Vec<u8>) {
    if length <= fix_max {
        out.push(fix | length as u8);
    } else if length <= 0xffff {
        out.push(wide16);
        out.extend_from_slice(&(length as u16).to_be_bytes());
    } else {
        out.push(wide32);
        out.extend_from_slice(&(length as u32).to_be_bytes());
    }
}

fn pack_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    let length = bytes.len();
    if length < 32 {
        out.push(0xa0 | length as u8);
    } else if length <= 0xff {
        out.push(0xd9);
        out.push(length as u8);
    } else {
        pack_header(length, [0xa0, 0xda, 0xdb], 0, out);
    }
    out.extend_from_slice(bytes);
}

fn pack_number(number: f64, out: &mut Vec<u8>) {
    let integral = number == number.trunc() && number.abs() < 9.223_372_036_854_775e18;
    if !integral {
        if (number as f32) as f64 == number || number.is_nan() {
            out.push(0xca);
            out.extend_from_slice(&(number as f32).to_be_bytes());
        } else {
            out.push(0xcb);
            out.extend_from_slice(&number.to_be_bytes());
        }
        return;
    }
    let n = number as i64;
    match n {
        0..=0x7f => out.push(n as u8),
        0x80..=0xff => out.extend_from_slice(&[0xcc, n as u8]),
        0x100..=0xffff => {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        n if n > 0 => {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
        -32..=-1 => out.push(n as i8 as u8),
        -128..=-33 => out.extend_from_slice(&[0xd0, n as i8 as u8]),
        -32768..=-129 => {
            out.push(0xd1);
            out.extend_from_slice(&(n as i16).to_be_bytes());
        }
        -2_147_483_648..=-32769 => {
            out.push(0xd2);
            out.extend_from_slice(&(n as i32).to_be_bytes());
        }
        n => {
            out.push(0xd3);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// Reads MessagePack values from a script's bytes; every length is checked against what is
/// left before anything is allocated for it.
struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

fn missing() -> mlua::Error {
    mlua::Error::RuntimeError("Missing bytes in input.".into())
}

fn bad_format() -> mlua::Error {
    mlua::Error::RuntimeError("Bad data format in input.".into())
}

impl Reader<'_> {
    fn take(&mut self, count: usize) -> mlua::Result<&[u8]> {
        let end = self.at.checked_add(count).ok_or_else(missing)?;
        let bytes = self.data.get(self.at..end).ok_or_else(missing)?;
        self.at = end;
        Ok(bytes)
    }

    fn unsigned(&mut self, width: usize) -> mlua::Result<u64> {
        Ok(self
            .take(width)?
            .iter()
            .fold(0u64, |value, byte| (value << 8) | u64::from(*byte)))
    }

    fn signed(&mut self, width: usize) -> mlua::Result<i64> {
        let raw = self.unsigned(width)?;
        let shift = 64 - 8 * width as u32;
        Ok(((raw << shift) as i64) >> shift)
    }

    fn value(&mut self, lua: &Lua, depth: usize) -> mlua::Result<Value> {
        if depth >= DEPTH_MAX {
            return Err(bad_format());
        }
        let marker = self.take(1)?[0];
        let number = |n: f64| Ok(Value::Number(n));
        match marker {
            0x00..=0x7f => number(f64::from(marker)),
            0xe0..=0xff => number(f64::from(marker as i8)),
            0x80..=0x8f => self.map(lua, usize::from(marker & 0x0f), depth),
            0x90..=0x9f => self.array(lua, usize::from(marker & 0x0f), depth),
            0xa0..=0xbf => self.string(lua, usize::from(marker & 0x1f)),
            0xc0 => Ok(Value::Nil),
            0xc2 => Ok(Value::Boolean(false)),
            0xc3 => Ok(Value::Boolean(true)),
            0xc4 | 0xd9 => {
                let length = self.unsigned(1)? as usize;
                self.string(lua, length)
            }
            0xc5 | 0xda => {
                let length = self.unsigned(2)? as usize;
                self.string(lua, length)
            }
            0xc6 | 0xdb => {
                let length = self.unsigned(4)? as usize;
                self.string(lua, length)
            }
            0xca => {
                let bits = self.unsigned(4)? as u32;
                number(f64::from(f32::from_bits(bits)))
            }
            0xcb => number(f64::from_bits(self.unsigned(8)?)),
            0xcc => number(self.unsigned(1)? as f64),
            0xcd => number(self.unsigned(2)? as f64),
            0xce => number(self.unsigned(4)? as f64),
            0xcf => number(self.unsigned(8)? as f64),
            0xd0 => number(self.signed(1)? as f64),
            0xd1 => number(self.signed(2)? as f64),
            0xd2 => number(self.signed(4)? as f64),
            0xd3 => number(self.signed(8)? as f64),
            0xdc => {
                let length = self.unsigned(2)? as usize;
                self.array(lua, length, depth)
            }
            0xdd => {
                let length = self.unsigned(4)? as usize;
                self.array(lua, length, depth)
            }
            0xde => {
                let length = self.unsigned(2)? as usize;
                self.map(lua, length, depth)
            }
            0xdf => {
                let length = self.unsigned(4)? as usize;
                self.map(lua, length, depth)
            }
            _ => Err(bad_format()),
        }
    }

    fn string(&mut self, lua: &Lua, length: usize) -> mlua::Result<Value> {
        let bytes = self.take(length)?;
        Ok(Value::String(lua.create_string(bytes)?))
    }

    /// Each item takes at least a byte, so a length longer than what is left is refused
    /// before the table is made.
    fn array(&mut self, lua: &Lua, length: usize, depth: usize) -> mlua::Result<Value> {
        if length > self.data.len() - self.at {
            return Err(missing());
        }
        let table = lua.create_table_with_capacity(length, 0)?;
        for index in 1..=length {
            table.raw_set(index, self.value(lua, depth + 1)?)?;
        }
        Ok(Value::Table(table))
    }

    fn map(&mut self, lua: &Lua, length: usize, depth: usize) -> mlua::Result<Value> {
        if length > (self.data.len() - self.at) / 2 {
            return Err(missing());
        }
        let table = lua.create_table_with_capacity(0, length)?;
        for _ in 0..length {
            let key = self.value(lua, depth + 1)?;
            let item = self.value(lua, depth + 1)?;
            // A Lua table has no nil or NaN key: such a pair is dropped.
            let usable = match &key {
                Value::Nil => false,
                Value::Number(n) => !n.is_nan(),
                _ => true,
            };
            if usable {
                table.raw_set(key, item)?;
            }
        }
        Ok(Value::Table(table))
    }
}

/// LuaBitOp: numbers taken modulo 2^32 as signed 32-bit integers, results the same.
fn bit_library(lua: &Lua) -> mlua::Result<Table> {
    fn to_bit(value: f64) -> i32 {
        value.round().rem_euclid(4_294_967_296.0) as u64 as u32 as i32
    }
    let bit = lua.create_table()?;
    let fold = |lua: &Lua, start: i32, operation: fn(i32, i32) -> i32| {
        lua.create_function(move |_, numbers: mlua::Variadic<f64>| {
            Ok(numbers
                .iter()
                .fold(start, |acc, n| operation(acc, to_bit(*n))))
        })
    };
    bit.set("band", fold(lua, -1, |a, b| a & b)?)?;
    bit.set("bor", fold(lua, 0, |a, b| a | b)?)?;
    bit.set("bxor", fold(lua, 0, |a, b| a ^ b)?)?;
    bit.set("tobit", lua.create_function(|_, n: f64| Ok(to_bit(n)))?)?;
    bit.set("bnot", lua.create_function(|_, n: f64| Ok(!to_bit(n)))?)?;
    bit.set(
        "bswap",
        lua.create_function(|_, n: f64| Ok(to_bit(n).swap_bytes()))?,
    )?;
    let shift = |lua: &Lua, operation: fn(i32, u32) -> i32| {
        lua.create_function(move |_, (n, by): (f64, f64)| {
            Ok(operation(to_bit(n), (to_bit(by) & 31) as u32))
        })
    };
    bit.set("lshift", shift(lua, |n, by| n.wrapping_shl(by))?)?;
    bit.set("rshift", shift(lua, |n, by| ((n as u32) >> by) as i32)?)?;
    bit.set("arshift", shift(lua, |n, by| n >> by)?)?;
    bit.set("rol", shift(lua, |n, by| n.rotate_left(by))?)?;
    bit.set("ror", shift(lua, |n, by| n.rotate_right(by))?)?;
    bit.set(
        "tohex",
        lua.create_function(|_, (n, digits): (f64, Option<f64>)| {
            let digits = digits.map_or(8, to_bit);
            let upper = digits < 0;
            let width = digits.unsigned_abs().clamp(1, 8) as usize;
            let value = (to_bit(n) as u32) as u64 & ((1u64 << (4 * width)) - 1);
            Ok(if upper {
                format!("{value:0width$X}")
            } else {
                format!("{value:0width$x}")
            })
        })?,
    )?;
    Ok(bit)
}

/// The body of the `redis_script_decoders` fuzz target (`crate::fuzzing::script_decoders`).
pub(crate) fn decode_for_fuzzing(data: &[u8]) {
    thread_local! {
        static LUA: Lua = {
            let lua = Lua::new_with(
                mlua::StdLib::TABLE | mlua::StdLib::STRING | mlua::StdLib::MATH,
                mlua::LuaOptions::default(),
            )
            .expect("a Lua state");
            install(&lua).expect("the libraries");
            lua
        };
    }
    const TRIP: &str = "local input = ...
        local function count(...) return select('#', ...), {...} end
        local ok, n, values = pcall(function() return count(cmsgpack.unpack(input)) end)
        if ok then
            local again = count(cmsgpack.unpack(cmsgpack.pack(unpack(values, 1, n))))
            assert(again == n, 'values lost in a round trip')
        end
        pcall(cjson.decode, input)";
    LUA.with(|lua| {
        let input = lua.create_string(data).expect("a string");
        let outcome = lua.load(TRIP).call::<()>(input);
        if let Err(error) = outcome {
            assert!(!error.to_string().contains("values lost"), "{error}");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_as_percent_14g() {
        for (number, text) in [
            (42.0, "42"),
            (-0.125, "-0.125"),
            (2.5, "2.5"),
            (1700000000123.0, "1700000000123"),
            (9007199254740992.0, "9.007199254741e+15"),
            (0.1, "0.1"),
            (1e-5, "1e-05"),
            (123456789012345.0, "1.2345678901234e+14"),
            (1.0 / 3.0, "0.33333333333333"),
        ] {
            assert_eq!(number_text(number), text, "{number}");
        }
    }

    fn packed(code: &str) -> Vec<u8> {
        let lua = Lua::new();
        install(&lua).unwrap();
        let packed: mlua::String = lua.load(code).eval().unwrap();
        packed.as_bytes().to_vec()
    }

    #[test]
    fn msgpack_forms_are_the_smallest_and_unpack_reads_them_back() {
        assert_eq!(
            packed("return cmsgpack.pack(-1, 127, 128, 65536)"),
            [0xff, 0x7f, 0xcc, 0x80, 0xce, 0x00, 0x01, 0x00, 0x00]
        );
        assert_eq!(
            packed("return cmsgpack.pack(-200, 1.5)"),
            [0xd1, 0xff, 0x38, 0xca, 0x3f, 0xc0, 0x00, 0x00]
        );
        assert_eq!(packed("return cmsgpack.pack({})"), [0x90]);
        let lua = Lua::new();
        install(&lua).unwrap();
        let text: String = lua
            .load(
                "local t = cmsgpack.unpack(cmsgpack.pack({a = {1, 2, 0.1}, b = 'x', c = -70000}))
                 return t.a[3] .. ' ' .. t.b .. ' ' .. t.c .. ' ' .. #t.a",
            )
            .eval()
            .unwrap();
        assert_eq!(text, "0.1 x -70000 3");
    }

    #[test]
    fn truncated_or_lying_msgpack_is_refused_without_allocating() {
        let lua = Lua::new();
        install(&lua).unwrap();
        let unpack: mlua::Function = lua.load("return cmsgpack.unpack").eval().unwrap();
        for bytes in [
            &b"\xdd\xff\xff\xff\xff"[..],
            b"\xdf\xff\xff\xff\xff\x01",
            b"\xdb\xff\xff\xff\xffab",
            b"\xcb\x00",
            b"\xc1",
        ] {
            let input = lua.create_string(bytes).unwrap();
            assert!(unpack.call::<MultiValue>(input).is_err(), "{bytes:?}");
        }
        let deep = vec![0x91u8; 100_000];
        let input = lua.create_string(&deep).unwrap();
        assert!(unpack.call::<MultiValue>(input).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_unpack_to_values_or_an_error(data in proptest::collection::vec(0u8..=255, 0..256)) {
            decode_for_fuzzing(&data);
        }
    }

    #[test]
    fn a_table_that_holds_itself_is_refused_not_walked_for_ever() {
        let lua = Lua::new();
        install(&lua).unwrap();
        for call in ["cjson.encode(t)", "cmsgpack.pack(t)"] {
            let code = format!("local t = {{}}; t[1] = t; t[2] = t; return {call}");
            let outcome = lua.load(code.as_str()).eval::<mlua::String>();
            assert!(outcome.is_err(), "{call}");
        }
    }
}
