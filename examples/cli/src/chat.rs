//! `hearth chat`: an interactive REPL over a [`Session`]; scriptable when stdin is not a terminal
//! (one user message per line, each answer and its stats line printed, exit at end of input).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hearth::{
    CancelToken, Engine, EngineOptions, Event, GenerateOptions, Message, Request, Session,
    SessionOptions, TurnStats,
};

use crate::CliResult;

pub struct ChatArgs {
    pub model: PathBuf,
    pub engine: EngineOptions,
    pub session: SessionOptions,
    pub generate: GenerateOptions,
    pub hide_thinking: bool,
}

const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

pub fn chat(args: ChatArgs) -> CliResult {
    let engine = Engine::load(&args.model, args.engine.clone())?;
    let interactive = std::io::stdin().is_terminal();
    let color = std::io::stdout().is_terminal();
    let mut session = Session::new(&engine, args.session.clone())?;
    install_ctrl_c();
    if interactive {
        eprintln!(
            "hearth chat — {} on {}",
            args.model.display(),
            engine.backend_description()
        );
        eprintln!(
            "commands: /reset  /system TEXT  /save FILE  /load FILE  /quit   (Ctrl-C cancels a turn)"
        );
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        if interactive {
            eprint!("\n> ");
            std::io::stderr().flush()?;
        }
        let Some(line) = lines.next() else { break };
        let line = line?;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        if let Some(cmd) = text.strip_prefix('/') {
            match command(cmd, &engine, &mut session) {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) if !interactive => return Err(e),
                Err(e) => eprintln!("error: {e}"),
            }
            continue;
        }
        match turn(&mut session, text, &args, color) {
            Ok(stats) => print_stats(&stats),
            // Scripted (stdin not a terminal): a failed turn fails the command.
            Err(e) if !interactive => return Err(e),
            Err(e) => eprintln!("error: {e}"),
        }
    }
    Ok(())
}

/// Handles a slash command; returns true to quit.
fn command(cmd: &str, engine: &Engine, session: &mut Session) -> CliResult<bool> {
    let (name, rest) = cmd
        .split_once(' ')
        .map_or((cmd, ""), |(a, b)| (a, b.trim()));
    match name {
        "quit" | "exit" => return Ok(true),
        "reset" => {
            session.reset()?;
            println!("(conversation cleared)");
        }
        "system" => {
            session.set_system_prompt((!rest.is_empty()).then(|| rest.to_string()));
            println!(
                "(system prompt {})",
                if rest.is_empty() { "cleared" } else { "set" }
            );
        }
        "save" if !rest.is_empty() => {
            session.save(Path::new(rest), true)?;
            println!("(saved to {rest})");
        }
        "load" if !rest.is_empty() => {
            *session = Session::restore(engine, Path::new(rest))?;
            println!("(loaded {} messages from {rest})", session.messages().len());
        }
        _ => eprintln!("unknown command /{cmd}: /reset /system TEXT /save FILE /load FILE /quit"),
    }
    Ok(false)
}

fn turn(session: &mut Session, text: &str, args: &ChatArgs, color: bool) -> CliResult<TurnStats> {
    let mut out = std::io::stdout().lock();
    let mut in_thinking = false;
    let mut stats = None;
    let cancel = CancelToken::new();
    let _running = RunningTurn::set(cancel.clone());
    let request = Request::Send(Message::user(text));
    for event in session.start(request, &args.generate, cancel)? {
        match event? {
            Event::Thinking(t) if !args.hide_thinking => {
                if !in_thinking && color {
                    write!(out, "{DIM}")?;
                }
                in_thinking = true;
                write!(out, "{t}")?;
            }
            Event::Thinking(_) => {}
            Event::Text(t) => {
                if in_thinking {
                    if color {
                        write!(out, "{RESET}")?;
                    }
                    writeln!(out)?;
                    in_thinking = false;
                }
                write!(out, "{t}")?;
            }
            Event::ToolCall(call) => writeln!(
                out,
                "\n[tool call {}: {}({})]",
                call.id, call.name, call.arguments
            )?,
            Event::ToolCallError { raw, reason } => {
                writeln!(out, "\n[malformed tool call ({reason}): {raw}]")?
            }
            Event::Done(s) => stats = Some(s),
        }
        out.flush()?;
    }
    if in_thinking && color {
        write!(out, "{RESET}")?;
    }
    writeln!(out)?;
    stats.ok_or_else(|| "turn ended without statistics".into())
}

fn print_stats(s: &TurnStats) {
    println!(
        "[{:?} | prompt {} tokens, cached {} | generated {} | ttft {:.0} ms | prefill {:.1} tok/s | decode {:.1} tok/s]",
        s.stop_reason,
        s.prompt_tokens,
        s.cached_tokens,
        s.generated_tokens,
        s.time_to_first_token.as_secs_f64() * 1e3,
        s.prefill_tok_s,
        s.decode_tok_s
    );
}

/// The running turn's cancel token (Ctrl-C cancels it; with none, Ctrl-C exits).
static RUNNING: Mutex<Option<CancelToken>> = Mutex::new(None);

/// Marks a turn as running for the Ctrl-C handler until dropped.
struct RunningTurn;

impl RunningTurn {
    fn set(cancel: CancelToken) -> RunningTurn {
        *RUNNING.lock().unwrap_or_else(|p| p.into_inner()) = Some(cancel);
        RunningTurn
    }
}

impl Drop for RunningTurn {
    fn drop(&mut self) {
        *RUNNING.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// Ctrl-C cancels the running turn (it rolls back); outside a turn it exits.
fn install_ctrl_c() {
    let installed =
        ctrlc::set_handler(
            || match RUNNING.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                Some(cancel) => cancel.cancel(),
                None => std::process::exit(130),
            },
        );
    if let Err(e) = installed {
        eprintln!("warning: Ctrl-C handler not installed: {e}");
    }
}
