//! Values between Lua and Redis replies, by Redis's rules (RESP2, as a script sees replies
//! unless it asks otherwise):
//!
//! - a reply to `redis.call`: integer → number, bulk string → string, nil → `false`, array →
//!   table, status → `{ok = text}`, error → `{err = text}` (`redis.call` raises it), a double
//!   → its text (RESP2 sends it as a bulk string);
//! - what a script returns: number → integer (truncated), string → bulk string, table with
//!   `err` → error, with `ok` → status, other table → array up to its first nil, `true` → 1,
//!   `false` and nil → nil.

use bytes::Bytes;
use mlua::{Lua, Table, Value};

use crate::codec::{double_text, Reply};

/// A command's reply as Lua sees it.
pub(super) fn to_lua(lua: &Lua, reply: Reply) -> mlua::Result<Value> {
    Ok(match reply {
        Reply::Integer(n) => Value::Integer(n),
        Reply::Bulk(bytes) => Value::String(lua.create_string(&bytes)?),
        Reply::Double(value) => Value::String(lua.create_string(double_text(value))?),
        Reply::DoubleText(text) => Value::String(lua.create_string(text)?),
        Reply::Null | Reply::NullArray => Value::Boolean(false),
        Reply::Status(text) => {
            let table = lua.create_table()?;
            table.set("ok", text)?;
            Value::Table(table)
        }
        Reply::Error(text) => {
            let table = lua.create_table()?;
            table.set("err", text)?;
            Value::Table(table)
        }
        Reply::Array(items) | Reply::Set(items) | Reply::Push(items) | Reply::Many(items) => {
            let table = lua.create_table_with_capacity(items.len(), 0)?;
            for (at, item) in items.into_iter().enumerate() {
                table.raw_set(at + 1, to_lua(lua, item)?)?;
            }
            Value::Table(table)
        }
        Reply::Map(pairs) => {
            let table = lua.create_table_with_capacity(pairs.len() * 2, 0)?;
            for (at, (key, value)) in pairs.into_iter().enumerate() {
                table.raw_set(2 * at + 1, to_lua(lua, key)?)?;
                table.raw_set(2 * at + 2, to_lua(lua, value)?)?;
            }
            Value::Table(table)
        }
    })
}

/// What a script returned, as the reply to EVAL.
pub(super) fn to_reply(value: Value, depth: usize) -> Reply {
    match value {
        Value::Nil | Value::Boolean(false) => Reply::Null,
        Value::Boolean(true) => Reply::Integer(1),
        Value::Integer(n) => Reply::Integer(n),
        Value::Number(n) => Reply::Integer(n as i64),
        Value::String(text) => Reply::Bulk(Bytes::copy_from_slice(&text.as_bytes())),
        Value::Table(table) => table_reply(table, depth),
        // Functions, userdata, threads: Redis answers nil for what it cannot convert.
        _ => Reply::Null,
    }
}

/// Deeper than this, a table is answered as nil (a table holding itself would not end).
const DEPTH_MAX: usize = 64;

fn table_reply(table: Table, depth: usize) -> Reply {
    if let Ok(Value::String(text)) = table.raw_get::<Value>("err") {
        return Reply::Error(text.to_string_lossy());
    }
    if let Ok(Value::String(text)) = table.raw_get::<Value>("ok") {
        return Reply::Status(text.to_string_lossy());
    }
    if depth >= DEPTH_MAX {
        return Reply::Null;
    }
    let mut items = Vec::new();
    for at in 1.. {
        match table.raw_get::<Value>(at) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(value) => items.push(to_reply(value, depth + 1)),
        }
    }
    Reply::Array(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(lua: &Lua, code: &str) -> Reply {
        to_reply(lua.load(code).eval::<Value>().unwrap(), 0)
    }

    #[test]
    fn what_a_script_returns_becomes_a_reply_by_redis_rules() {
        let lua = Lua::new();
        assert_eq!(run(&lua, "return 3.7"), Reply::Integer(3));
        assert_eq!(run(&lua, "return 'x'"), Reply::text("x"));
        assert_eq!(run(&lua, "return true"), Reply::Integer(1));
        assert_eq!(run(&lua, "return false"), Reply::Null);
        assert_eq!(run(&lua, "return nil"), Reply::Null);
        assert_eq!(
            run(&lua, "return {1, 'a', nil, 4}"),
            Reply::Array(vec![Reply::Integer(1), Reply::text("a")])
        );
        assert_eq!(
            run(&lua, "return {err = 'ERR bad'}"),
            Reply::error("ERR bad")
        );
        assert_eq!(
            run(&lua, "return {ok = 'FINE'}"),
            Reply::Status("FINE".into())
        );
        // A table holding itself ends, nested as deep as the bound, in a nil.
        let mut reply = run(&lua, "local t = {} t[1] = t return t");
        let mut depth = 0;
        while let Reply::Array(mut items) = reply {
            depth += 1;
            reply = items.pop().unwrap();
        }
        assert_eq!((depth, reply), (DEPTH_MAX, Reply::Null));
    }

    #[test]
    fn replies_reach_a_script_by_redis_rules() {
        let lua = Lua::new();
        let globals = lua.globals();
        let reply = Reply::Array(vec![
            Reply::Integer(2),
            Reply::Null,
            Reply::Status("OK".into()),
            Reply::Double(1.5),
        ]);
        globals.set("r", to_lua(&lua, reply).unwrap()).unwrap();
        let check: bool = lua
            .load("return r[1] == 2 and r[2] == false and r[3].ok == 'OK' and r[4] == '1.5'")
            .eval()
            .unwrap();
        assert!(check);
    }
}
