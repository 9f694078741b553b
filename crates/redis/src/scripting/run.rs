//! Running a script (EVAL, EVALSHA, EVAL_RO, EVALSHA_RO): the door thread's Lua state, the
//! `redis` table a script calls commands through, and the bounds on a run.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};

use super::values::{to_lua, to_reply};
use crate::codec::{double_text, Protocol, Reply};
use crate::commands::{self, lowercase, NOT_AN_INTEGER};
use crate::session::{Session, Step};

/// Longest a script may run before it is stopped with an error (Redis lets it run on, busy,
/// until SCRIPT KILL; a door thread serving other connections cannot wait that long).
pub const SCRIPT_TIME_MAX: Duration = Duration::from_secs(5);
/// Most memory one door thread's Lua state may hold.
pub const LUA_MEMORY_MAX: usize = 256 * 1024 * 1024;
/// Compiled scripts each door thread keeps (it starts again empty past this).
const COMPILED_MAX: usize = 1_000;
/// How often (in Lua instructions) a running script's time is looked at.
const TIME_CHECK_EVERY: u32 = 10_000;

/// One door thread's Lua: the state, and the scripts it compiled by SHA-1.
struct State {
    lua: Lua,
    compiled: HashMap<String, Function>,
    /// The SHA-1 of each script body EVAL sent this thread: a pipeline of EVALs of one
    /// script hashes it once, not twice per EVAL (emptied with `compiled`).
    shas: HashMap<Bytes, String>,
    /// Where a run puts its command dispatcher (`dispatch`), which `redis.call` and
    /// `redis.pcall`, made once per state, call: one scoped function per run, not two.
    hooks: Table,
    /// The metatable every run's globals get (reads fall through to the shared globals).
    inherit: Table,
    /// The `redis` table, and its `call` and `pcall`, put back at each run (a script may
    /// have replaced them in the shared table).
    redis: Table,
    calls: (Function, Function),
    names: Names,
    /// The functions of the script libraries (FUNCTION LOAD), registered in this state, and
    /// the generation of the listener's libraries they were loaded at (`functions.rs`).
    functions: HashMap<String, Function>,
    functions_generation: Option<u64>,
}

/// The names a run sets, as Lua strings made once per state (see [`environment`]).
struct Names {
    keys: mlua::String,
    argv: mlua::String,
    dispatch: mlua::String,
    call: mlua::String,
    pcall: mlua::String,
}

/// `redis.call` and `redis.pcall` as Lua functions over the run's dispatcher.
const CALLS: &str = r#"
local hooks = ...
redis.call = function(...) return hooks.dispatch(true, ...) end
redis.pcall = function(...) return hooks.dispatch(false, ...) end
"#;

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
    /// The running script passed [`SCRIPT_TIME_MAX`]: every `pcall`, `xpcall` and
    /// `coroutine.resume` rethrows, so a script cannot catch its own stop and spin on.
    static EXPIRED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// What a stopped script answers.
fn too_long() -> String {
    format!(
        "ERR the script ran longer than {} ms and was stopped",
        SCRIPT_TIME_MAX.as_millis()
    )
}

/// Lua run once per state, after the `redis` table: the error-catching functions rethrow a
/// stop (see [`EXPIRED`]).
const GUARDS: &str = r#"
local raw_pcall, raw_xpcall, raw_resume = pcall, xpcall, coroutine.resume
local expired, message, error = __omnibus_expired, __omnibus_too_long, error
__omnibus_expired, __omnibus_too_long = nil, nil
local function checked(...)
    if expired() then error(message, 0) end
    return ...
end
pcall = function(...) return checked(raw_pcall(...)) end
xpcall = function(...) return checked(raw_xpcall(...)) end
coroutine.resume = function(...) return checked(raw_resume(...)) end
"#;

/// Lua run once per state, last: Redis 7's globals protection. Reading a global nobody
/// defined is an error (a misspelt name fails loudly instead of reading nil), a script
/// cannot set globals, and the libraries' tables are read-only (through proxies), so no
/// script can change `redis`, `string`, `cjson`… for the scripts of other clients that
/// run in the same state after it. Errors worded as redis-server's.
const PROTECT: &str = r#"
local error, tostring, setmetatable, rawget, rawset, type = error, tostring, setmetatable, rawget, rawset, type
local function readonly() error("Attempt to modify a readonly table", 2) end
local function missing(_, name)
    error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
end
for _, name in ipairs({"redis", "string", "table", "math", "cjson", "cmsgpack", "bit", "coroutine"}) do
    local real = rawget(_G, name)
    if type(real) == "table" then
        rawset(_G, name, setmetatable({}, {__index = real, __newindex = readonly, __metatable = false}))
    end
end
setmetatable(_G, {__index = missing, __newindex = readonly, __metatable = false})
return readonly
"#;

/// EVAL script numkeys key… arg…, EVALSHA sha1 numkeys key… arg… (and the `_RO` forms).
pub(crate) fn eval(session: &mut Session, name: &str, arguments: &[Bytes]) -> Step {
    match run(session, name, arguments) {
        Ok(step) => step,
        Err(reply) => reply.into(),
    }
}

/// Stops the run that follows once it passed [`SCRIPT_TIME_MAX`] (checked every
/// [`TIME_CHECK_EVERY`] instructions; see [`EXPIRED`]).
fn limit_time(lua: &Lua) {
    let started = Instant::now();
    EXPIRED.with(|expired| expired.set(false));
    lua.set_hook(
        HookTriggers::new().every_nth_instruction(TIME_CHECK_EVERY),
        move |_, _| {
            if started.elapsed() > SCRIPT_TIME_MAX {
                EXPIRED.with(|expired| expired.set(true));
                return Err(mlua::Error::RuntimeError(too_long()));
            }
            Ok(VmState::Continue)
        },
    );
}

/// The keys and the arguments of `name-or-body numkeys key… arg…` (EVAL's and FCALL's
/// words after the name); `not_a_count` is the error for a numkeys that is no integer.
pub(super) fn split_keys<'a>(
    arguments: &'a [Bytes],
    not_a_count: &str,
) -> Result<(&'a [Bytes], &'a [Bytes]), Reply> {
    let numkeys = commands::integer(&arguments[1]).map_err(|_| Reply::error(not_a_count))?;
    if numkeys < 0 {
        return Err(Reply::error("ERR Number of keys can't be negative"));
    }
    let rest = &arguments[2..];
    if numkeys as u64 > rest.len() as u64 {
        return Err(Reply::error(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    Ok(rest.split_at(numkeys as usize))
}

fn run(session: &mut Session, name: &str, arguments: &[Bytes]) -> Result<Step, Reply> {
    let (keys, argv) = split_keys(arguments, NOT_AN_INTEGER)?;
    let (sha, body) = if name.starts_with("evalsha") {
        let sha = lowercase(&arguments[0]);
        match session.shared.scripts.get(&sha) {
            Some(body) => (sha, body),
            None => {
                return Err(Reply::error(
                    "NOSCRIPT No matching script. Please use EVAL.",
                ))
            }
        }
    } else {
        let body = arguments[0].clone();
        (with_state(|state| Ok(state.sha_of(&body)))?, body)
    };
    let read_only = name.ends_with("_ro");
    with_state(|state| {
        let function = compiled(state, &sha, &body)?;
        if !name.starts_with("evalsha") {
            // EVAL keeps a script that compiles, as Redis does (EVALSHA may name it next); a
            // full cache only means it is compiled again next time.
            session.shared.scripts.keep_named(sha.clone(), &body);
        }
        execute(
            state,
            Body::Script(&function),
            session,
            keys,
            argv,
            read_only,
        )
    })
}

/// What a run calls: a script's chunk (KEYS and ARGV as globals), or a library's function
/// (FCALL: keys and arguments as its two parameters).
enum Body<'a> {
    Script(&'a Function),
    Registered(&'a Function),
}

/// Compiles `body` on this thread (kept for the EVALSHA that follows), or the error a
/// script that does not compile is refused with (SCRIPT LOAD).
pub(super) fn check_compiles(sha: &str, body: &Bytes) -> Result<(), Reply> {
    with_state(|state| compiled(state, sha, body).map(|_| ()))
}

/// Runs `work` on this door thread's Lua state, made the first time.
fn with_state<T>(work: impl FnOnce(&mut State) -> Result<T, Reply>) -> Result<T, Reply> {
    STATE.with(|state| {
        let mut state = state.borrow_mut();
        if state.is_none() {
            *state = Some(new_state().map_err(|e| lua_failure(&e))?);
        }
        work(state.as_mut().expect("made above"))
    })
}

fn new_state() -> mlua::Result<State> {
    // Only the libraries Redis gives scripts (base, table, string, math): no `io`, `os`,
    // `package` or `debug`, and none of base's functions that reach files or the broker's
    // output, so a client's script cannot touch the machine.
    let lua = Lua::new_with(
        StdLib::TABLE | StdLib::STRING | StdLib::MATH,
        LuaOptions::default(),
    )?;
    lua.set_memory_limit(LUA_MEMORY_MAX)?;
    let globals = lua.globals();
    for name in ["loadfile", "dofile", "print", "require", "module"] {
        globals.raw_remove(name)?;
    }
    globals.set(
        "__omnibus_expired",
        lua.create_function(|_, ()| Ok(EXPIRED.with(|expired| expired.get())))?,
    )?;
    globals.set("__omnibus_too_long", too_long())?;
    super::libraries::install(&lua)?;
    lua.load(GUARDS).set_name("@omnibus_guards").exec()?;
    let redis = lua.create_table()?;
    redis.set(
        "status_reply",
        lua.create_function(|lua, text: mlua::String| {
            let table = lua.create_table()?;
            table.set("ok", text)?;
            Ok(table)
        })?,
    )?;
    redis.set(
        "error_reply",
        lua.create_function(|lua, text: mlua::String| {
            let table = lua.create_table()?;
            table.set("err", text)?;
            Ok(table)
        })?,
    )?;
    redis.set(
        "sha1hex",
        lua.create_function(|_, text: mlua::String| Ok(super::sha1_hex(&text.as_bytes())))?,
    )?;
    // Logging goes nowhere: a script's log lines are not the broker's.
    redis.set("log", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    for (level, number) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
    ] {
        redis.set(level, number)?;
    }
    globals.set("redis", redis)?;
    let hooks = lua.create_table()?;
    lua.load(CALLS)
        .set_name("@omnibus_calls")
        .call::<()>(hooks.clone())?;
    let redis: Table = globals.get("redis")?;
    let calls = (redis.get("call")?, redis.get("pcall")?);
    // Last: the `redis` table above is the real one, which each run's `call` and `pcall`
    // are set in; scripts see it through a read-only proxy.
    let readonly: mlua::Function = lua.load(PROTECT).set_name("@omnibus_protect").eval()?;
    let inherit = lua.create_table()?;
    inherit.raw_set("__index", globals.clone())?;
    inherit.raw_set("__newindex", readonly)?;
    inherit.raw_set("__metatable", false)?;
    let names = Names {
        keys: lua.create_string("KEYS")?,
        argv: lua.create_string("ARGV")?,
        dispatch: lua.create_string("dispatch")?,
        call: lua.create_string("call")?,
        pcall: lua.create_string("pcall")?,
    };
    Ok(State {
        functions: HashMap::new(),
        functions_generation: None,
        names,
        lua,
        compiled: HashMap::new(),
        shas: HashMap::new(),
        hooks,
        inherit,
        redis,
        calls,
    })
}

impl State {
    /// The SHA-1 of `body`, hashed the first time this thread sees it.
    fn sha_of(&mut self, body: &Bytes) -> String {
        if let Some(sha) = self.shas.get(body) {
            return sha.clone();
        }
        let sha = super::sha1_hex(body);
        if self.shas.len() >= COMPILED_MAX {
            self.shas.clear();
        }
        // A copy: the body may be a slice of the connection's whole read buffer.
        self.shas.insert(Bytes::copy_from_slice(body), sha.clone());
        sha
    }
}

/// The compiled function of script `sha`, compiling `body` the first time on this thread.
fn compiled(state: &mut State, sha: &str, body: &Bytes) -> Result<Function, Reply> {
    if let Some(function) = state.compiled.get(sha) {
        return Ok(function.clone());
    }
    let function = state
        .lua
        .load(body.as_ref())
        .set_name("@user_script")
        .into_function()
        .map_err(|error| {
            Reply::error(format!(
                "ERR Error compiling script (new function): {}",
                one_line(&error.to_string())
            ))
        })?;
    if state.compiled.len() >= COMPILED_MAX {
        state.compiled.clear();
        state.shas.clear();
    }
    state.compiled.insert(sha.to_string(), function.clone());
    Ok(function)
}

/// Lifts the state's memory limit while the broker (not the script) sets a run up: while a
/// limit is set, mlua wraps every call that allocates (each table, string, field) in a
/// protected call of its own — a C closure made and a `pcall` — which cost more than the
/// work itself, a quarter of an EVAL's time. What is allocated meanwhile is bounded by the
/// command's own words; the limit is back before the script runs, and on any early return.
struct Unlimited<'a>(&'a Lua);

impl<'a> Unlimited<'a> {
    fn new(lua: &'a Lua) -> Unlimited<'a> {
        let _ = lua.set_memory_limit(0);
        Unlimited(lua)
    }
}

impl Drop for Unlimited<'_> {
    fn drop(&mut self) {
        let _ = self.0.set_memory_limit(LUA_MEMORY_MAX);
    }
}

/// Runs `function` with KEYS and ARGV, `redis.call` / `redis.pcall` running commands on
/// `session`; its reply waits for the writes the commands made.
fn execute(
    state: &State,
    body: Body<'_>,
    session: &mut Session,
    keys: &[Bytes],
    argv: &[Bytes],
    read_only: bool,
) -> Result<Step, Reply> {
    let lua = &state.lua;
    // Held for the whole run, as Redis runs a script: no other client's key command runs
    // in between, and the script's key changes reach the disk in one commit.
    let keyspace = session.keys.clone();
    let held = keyspace.exclusive();
    // Run by EXEC, the script's XADDs join the transaction's: its reads settle those too,
    // and EXEC's reply waits for their fsyncs.
    let nested = session.script_appends.is_some();
    if !nested {
        session.script_appends = Some(Vec::new());
    }
    let broadcasts = commands::tracking::hold_broadcasts(session);
    let commits = RefCell::new(Vec::new());
    let session = RefCell::new(session);
    limit_time(lua);
    let outcome = lua.scope(|scope| {
        let unlimited = Unlimited::new(lua);
        let (session, commits) = (&session, &commits);
        let dispatch = scope.create_function(move |lua, (raise, words): (bool, MultiValue)| {
            let reply = command(&mut session.borrow_mut(), commits, words, read_only);
            match reply {
                Reply::Error(text) if raise => Err(mlua::Error::RuntimeError(text)),
                reply => to_lua(lua, reply),
            }
        })?;
        let names = &state.names;
        state.hooks.raw_set(&names.dispatch, dispatch)?;
        state.redis.raw_set(&names.call, state.calls.0.clone())?;
        state.redis.raw_set(&names.pcall, state.calls.1.clone())?;
        match body {
            Body::Script(function) => {
                function.set_environment(environment(lua, state, keys, argv)?)?;
                // The script itself runs within the limit.
                drop(unlimited);
                function.call::<Value>(())
            }
            Body::Registered(function) => {
                let (keys, argv) = (strings(lua, keys)?, strings(lua, argv)?);
                drop(unlimited);
                function.call::<Value>((keys, argv))
            }
        }
    });
    // The dispatcher ended with the scope: a function kept by the script finds none.
    let _ = state.hooks.raw_set(&state.names.dispatch, Value::Nil);
    lua.remove_hook();
    drop(held);
    let reply = match outcome {
        Ok(value) => to_reply(value, 0),
        Err(error) => Reply::error(script_error(&error)),
    };
    let session = session.into_inner();
    commands::tracking::send_held_broadcasts(session, broadcasts);
    // The reply waits for the fsync of every XADD the script made (and its key changes').
    let appends = match nested {
        true => Vec::new(),
        false => session.script_appends.take().unwrap_or_default(),
    };
    let (reply, later) = commands::held::after_appends(reply, appends);
    Ok(Step {
        reply,
        commits: commits.into_inner(),
        close: false,
        later,
    })
}

/// The globals a run sees: KEYS and ARGV of its own over the shared ones (so one script's
/// globals do not reach the next).
fn environment(lua: &Lua, state: &State, keys: &[Bytes], argv: &[Bytes]) -> mlua::Result<Table> {
    let environment = lua.create_table_with_capacity(0, 2)?;
    // Raw, with names made once per state: a `set` with a Rust `&str` makes the Lua string
    // again on every run.
    environment.raw_set(&state.names.keys, strings(lua, keys)?)?;
    environment.raw_set(&state.names.argv, strings(lua, argv)?)?;
    environment.set_metatable(Some(state.inherit.clone()));
    Ok(environment)
}

/// A Lua array of `words`.
fn strings(lua: &Lua, words: &[Bytes]) -> mlua::Result<Table> {
    let table = lua.create_table_with_capacity(words.len(), 0)?;
    for (at, word) in words.iter().enumerate() {
        table.raw_set(at + 1, lua.create_string(word)?)?;
    }
    Ok(table)
}

/// One function a library registered (`redis.register_function`).
pub(super) struct Registered {
    pub(super) name: String,
    pub(super) flags: Vec<String>,
    pub(super) description: Option<String>,
    function: Function,
}

/// The flags a library function may carry (Redis's).
const FUNCTION_FLAGS: [&str; 5] = [
    "no-writes",
    "allow-oom",
    "allow-stale",
    "no-cluster",
    "allow-cross-slot-keys",
];

/// Runs a library's `code` (after its `#!lua` line) on this thread's Lua state, in an
/// environment of its own where `redis.register_function` records what it registers; what
/// it registered, or the error FUNCTION LOAD answers. Bounded in time as a script is.
pub(super) fn evaluate_library(code: &[u8]) -> Result<Vec<Registered>, Reply> {
    with_state(|state| evaluate_in(state, code))
}

fn evaluate_in(state: &State, code: &[u8]) -> Result<Vec<Registered>, Reply> {
    let lua = &state.lua;
    let failed = |error: mlua::Error| {
        let mut cause = &error;
        while let mlua::Error::CallbackError { cause: inner, .. } = cause {
            cause = inner;
        }
        let text = match cause {
            mlua::Error::RuntimeError(text) => text.clone(),
            other => other.to_string(),
        };
        Reply::error(format!(
            "ERR Error registering functions: {}",
            one_line(&text)
        ))
    };
    // Compiled after an empty first line, where the `#!lua` line was: line numbers in
    // errors count as in the library the client sent.
    let mut source = Vec::with_capacity(code.len() + 1);
    source.push(b'\n');
    source.extend_from_slice(code);
    let chunk = lua
        .load(source)
        .set_name("@user_function")
        .into_function()
        .map_err(|error| {
            let text = match &error {
                mlua::Error::SyntaxError { message, .. } => message.clone(),
                other => other.to_string(),
            };
            Reply::error(format!("ERR Error compiling function: {}", one_line(&text)))
        })?;
    let registered = RefCell::new(Vec::<Registered>::new());
    limit_time(lua);
    let outcome = lua.scope(|scope| {
        let registered = &registered;
        let register = scope.create_function(move |_, arguments: MultiValue| {
            let entry = registration(arguments)?;
            let mut registered = registered.borrow_mut();
            if registered.iter().any(|r| r.name == entry.name) {
                return Err(mlua::Error::RuntimeError(
                    "ERR Function already exists in the library".into(),
                ));
            }
            registered.push(entry);
            Ok(())
        })?;
        // The library's own globals over the shared ones, and a `redis` table of its own
        // with `register_function` over the shared `redis`.
        let proxy = lua.create_table()?;
        proxy.raw_set("register_function", register)?;
        let through = lua.create_table()?;
        through.raw_set("__index", state.redis.clone())?;
        proxy.set_metatable(Some(through));
        let environment = lua.create_table()?;
        environment.raw_set("redis", proxy)?;
        environment.set_metatable(Some(state.inherit.clone()));
        chunk.set_environment(environment)?;
        chunk.call::<()>(())
    });
    lua.remove_hook();
    outcome.map_err(failed)?;
    let registered = registered.into_inner();
    if registered.is_empty() {
        return Err(Reply::error("ERR No functions registered"));
    }
    Ok(registered)
}

/// `redis.register_function('name', callback)` or
/// `redis.register_function{function_name=…, callback=…, flags={…}, description=…}`.
fn registration(arguments: MultiValue) -> mlua::Result<Registered> {
    let refuse = |text: &str| Err(mlua::Error::RuntimeError(text.into()));
    let mut values = arguments.into_iter();
    let (name, function, flags, description) = match (values.next(), values.next(), values.next()) {
        (Some(Value::String(name)), Some(Value::Function(function)), None) => {
            (name.to_str()?.to_string(), function, Vec::new(), None)
        }
        (Some(Value::Table(table)), None, None) => {
            let mut flags = Vec::new();
            if let Some(given) = table.get::<Option<Table>>("flags")? {
                for flag in given.sequence_values::<String>() {
                    let flag = flag?;
                    if !FUNCTION_FLAGS.contains(&flag.as_str()) {
                        return refuse("ERR unknown flag given");
                    }
                    flags.push(flag);
                }
            }
            for key in table.pairs::<String, Value>() {
                let (key, _) = key?;
                if !["function_name", "callback", "flags", "description"].contains(&key.as_str()) {
                    return refuse("ERR unknown argument given to redis.register_function");
                }
            }
            let Some(name) = table.get::<Option<String>>("function_name")? else {
                return refuse("ERR redis.register_function must get a function name argument");
            };
            let Some(function) = table.get::<Option<Function>>("callback")? else {
                return refuse("ERR redis.register_function must get a callback argument");
            };
            (
                name,
                function,
                flags,
                table.get::<Option<String>>("description")?,
            )
        }
        _ => return refuse("ERR wrong number of arguments to redis.register_function"),
    };
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        // Redis 7.0's words for a bad function name, which name libraries.
        return refuse(
            "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long",
        );
    }
    Ok(Registered {
        name,
        flags,
        description,
        function,
    })
}

/// FCALL / FCALL_RO of `name`, whose index was at `generation`: when this thread's state
/// registered the libraries at another generation, it registers them again from
/// `libraries` (their code, and the generation it is of), then runs the function.
pub(super) fn call_function(
    session: &mut Session,
    (generation, libraries): (u64, impl FnOnce() -> (u64, Vec<Bytes>)),
    name: &str,
    (keys, argv): (&[Bytes], &[Bytes]),
    read_only: bool,
) -> Result<Step, Reply> {
    with_state(|state| {
        if state.functions_generation != Some(generation) {
            let (generation, libraries) = libraries();
            let mut functions = HashMap::new();
            for code in &libraries {
                // A library that no longer loads (it did when it was stored) registers nothing.
                if let Ok(registered) = evaluate_in(state, code) {
                    functions.extend(registered.into_iter().map(|r| (r.name, r.function)));
                }
            }
            state.functions = functions;
            state.functions_generation = Some(generation);
        }
        let Some(function) = state.functions.get(name).cloned() else {
            return Err(Reply::error("ERR Function not found"));
        };
        execute(
            state,
            Body::Registered(&function),
            session,
            keys,
            argv,
            read_only,
        )
    })
}

/// Commands a script may not run: transactions, subscriptions, scripts and connection
/// state, which make no sense inside a script.
fn refused_in_scripts(name: &str) -> bool {
    crate::pubsub::subscribes(name)
        || matches!(
            name,
            "multi"
                | "exec"
                | "discard"
                | "watch"
                | "unwatch"
                | "eval"
                | "evalsha"
                | "eval_ro"
                | "evalsha_ro"
                | "fcall"
                | "fcall_ro"
                | "function"
                | "script"
                | "hello"
                | "quit"
                | "reset"
                | "auth"
                | "select"
                | "client"
                | "wait"
                | "waitaof"
                | "flushall"
                | "flushdb"
        )
}

/// One `redis.call` / `redis.pcall`: the words checked as a client's would be, then run.
fn command(
    session: &mut Session,
    commits: &RefCell<Vec<omnibus_engine::keys::Commit>>,
    words: MultiValue,
    read_only: bool,
) -> Reply {
    if EXPIRED.with(|expired| expired.get()) {
        return Reply::error(too_long());
    }
    if words.is_empty() {
        return Reply::error("ERR Please specify at least one argument for this redis lib call");
    }
    let mut arguments = Vec::with_capacity(words.len());
    for word in words {
        match word {
            Value::String(text) => arguments.push(Bytes::copy_from_slice(&text.as_bytes())),
            // Numbers as Redis writes them (Lua's own `tostring` keeps 14 digits: 2^53
            // would become `9.007199254741e+15`).
            Value::Integer(n) => arguments.push(Bytes::from(n.to_string())),
            Value::Number(n) => arguments.push(Bytes::from(double_text(n))),
            _ => return lib_arguments_error(),
        }
    }
    let name = lowercase(&arguments[0]);
    let Some(arity) = commands::arity(&name) else {
        return Reply::error("ERR Unknown Redis command called from script");
    };
    let count = arguments.len() as i64;
    if (arity > 0 && count != arity) || (arity < 0 && count < -arity) {
        return Reply::error("ERR Wrong number of args calling Redis command from script");
    }
    if refused_in_scripts(&name) {
        return Reply::error("ERR This Redis command is not allowed from script");
    }
    // Answered asynchronously by the door: waited for on this thread, which needs a
    // runtime with a thread to hand over (every door's; not a test's single thread).
    if commands::held::asynchronous(session, &name, &arguments) && !commands::held::can_wait_here()
    {
        return Reply::error("ERR This Redis command is not allowed from script");
    }
    if read_only && commands::writes(&name) {
        return Reply::error("ERR Write commands are not allowed from read-only scripts.");
    }
    // Shown to monitors after the script's EVAL, as Redis shows a script's commands.
    session.shared.monitors.feed("lua", &arguments, false);
    // A script sees RESP2 replies (flat WITHSCORES pairs, scores as text) whatever its
    // client speaks.
    let protocol = std::mem::replace(&mut session.protocol, Protocol::Resp2);
    let step = commands::held::run(session, &name, &arguments);
    session.protocol = protocol;
    commits.borrow_mut().extend(step.commits);
    step.reply
}

fn lib_arguments_error() -> Reply {
    Reply::error("ERR Lua redis lib command arguments must be strings or integers")
}

/// The error a failed run answers: a command's error as the command gave it, anything else
/// (a Lua error, a bound) after `ERR`.
fn script_error(error: &mlua::Error) -> String {
    let mut cause = error;
    while let mlua::Error::CallbackError { cause: inner, .. } = cause {
        cause = inner;
    }
    let text = match cause {
        mlua::Error::RuntimeError(text) => text.clone(),
        mlua::Error::MemoryError(_) => "ERR the script ran out of memory".into(),
        other => other.to_string(),
    };
    let text = one_line(&text);
    let has_code = text
        .split(' ')
        .next()
        .is_some_and(|code| !code.is_empty() && code.chars().all(|c| c.is_ascii_uppercase()));
    if has_code {
        text
    } else {
        format!("ERR {text}")
    }
}

/// The first line of an error (Lua appends a traceback on the next ones).
fn one_line(text: &str) -> String {
    text.lines().next().unwrap_or("").to_string()
}

fn lua_failure(error: &mlua::Error) -> Reply {
    Reply::error(format!(
        "ERR Lua could not start: {}",
        one_line(&error.to_string())
    ))
}
