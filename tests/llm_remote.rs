//! The OpenAI-compatible backend against real HTTP servers on 127.0.0.1:
//! one that answers correctly, and scripted ones that inject faults (429
//! with Retry-After, 500, a hang past the timeout, a truncated body, a
//! non-JSON body, a dropped connection, 4xx).

mod common;

use seki::llm::profile::{JsonMode, OpenaiProfile};
use seki::llm::{ChatModel, ChatOptions, Constraint, LlmError, Message, OpenaiModel};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the server does with one request.
#[derive(Debug, Clone)]
enum Reply {
    /// 200 with a completion whose content is this text.
    Ok(&'static str),
    /// This status and body, with an optional Retry-After.
    Status(u16, &'static str, Option<&'static str>),
    /// Read the request, then send nothing for this long.
    Hang(Duration),
    /// 200 announcing more bytes than it sends, then close.
    Truncated,
    /// 200 with a body that is not JSON.
    NotJson,
    /// Close the connection without answering.
    Drop,
    /// 200 with its headers and the first bytes of the body, then silence.
    StallAfterHeaders,
    /// 429 with `Retry-After` as an HTTP date this many seconds ahead.
    RetryAt(u64),
    /// 200 whose `choices[0].message` is this JSON object.
    Message(&'static str),
}

#[derive(Debug, Clone)]
struct Seen {
    head: String,
    body: String,
    at: Instant,
}

struct Server {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<(Vec<Reply>, usize)>>,
}

/// An HTTP date (IMF-fixdate) `ahead` seconds from now.
fn http_date(ahead: u64) -> String {
    let t = time::OffsetDateTime::now_utc() + Duration::from_secs(ahead);
    let f = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.format(&f).unwrap()
}

fn completion(text: &str) -> String {
    serde_json::json!({
        "id": "c1", "object": "chat.completion", "created": 0, "model": "loopback-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
    })
    .to_string()
}

async fn read_request(s: &mut TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
            return Some((head, body));
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn response(status: u16, body: &str, extra: &str) -> String {
    format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{body}",
        body.len()
    )
}

impl Server {
    /// Serve `script` in order (the last entry repeats).
    async fn start(script: Vec<Reply>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = Arc::clone(&seen);
        let script = Arc::new(Mutex::new((script, 0usize)));
        let script2 = Arc::clone(&script);
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let reply = {
                    let mut g = script2.lock().unwrap();
                    let (list, i) = &mut *g;
                    let r = list[(*i).min(list.len() - 1)].clone();
                    *i += 1;
                    r
                };
                let seen = Arc::clone(&seen2);
                tokio::spawn(async move {
                    let Some((head, body)) = read_request(&mut s).await else {
                        return;
                    };
                    seen.lock().unwrap().push(Seen {
                        head,
                        body,
                        at: Instant::now(),
                    });
                    let out = match reply {
                        Reply::Ok(t) => response(200, &completion(t), ""),
                        Reply::Status(code, body, ra) => response(
                            code,
                            body,
                            &ra.map(|r| format!("retry-after: {r}\r\n"))
                                .unwrap_or_default(),
                        ),
                        Reply::Hang(d) => {
                            tokio::time::sleep(d).await;
                            return;
                        }
                        Reply::Truncated => {
                            let full = completion("never complete");
                            format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                                full.len(),
                                &full[..full.len() / 2]
                            )
                        }
                        Reply::NotJson => response(200, "<html>proxy error</html>", ""),
                        Reply::Drop => return,
                        Reply::StallAfterHeaders => {
                            let full = completion("never complete");
                            let head = format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{}",
                                full.len(),
                                &full[..10]
                            );
                            let _ = s.write_all(head.as_bytes()).await;
                            let _ = s.flush().await;
                            tokio::time::sleep(Duration::from_secs(30)).await;
                            return;
                        }
                        Reply::RetryAt(ahead) => response(
                            429,
                            r#"{"error":{"message":"slow down"}}"#,
                            &format!("retry-after: {}\r\n", http_date(ahead)),
                        ),
                        Reply::Message(m) => {
                            let mut v: serde_json::Value =
                                serde_json::from_str(&completion("")).unwrap();
                            v["choices"][0]["message"] = serde_json::from_str(m).unwrap();
                            response(200, &v.to_string(), "")
                        }
                    };
                    let _ = s.write_all(out.as_bytes()).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        Server { url, seen, script }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Serve `script` from now on (from its start).
    fn set_script(&self, script: Vec<Reply>) {
        *self.script.lock().unwrap() = (script, 0);
    }
}

fn profile(url: &str) -> OpenaiProfile {
    OpenaiProfile {
        base_url: url.to_string(),
        model: "test-model".into(),
        api_key_env: None,
        headers: BTreeMap::new(),
        timeout_seconds: 5.0,
        max_retries: 3,
        backoff_initial_seconds: 0.01,
        backoff_max_seconds: 2.0,
        json_mode: JsonMode::JsonSchema,
        price_prompt_per_million: Some(1.0),
        price_completion_per_million: Some(4.0),
    }
}

async fn ask(p: &OpenaiProfile) -> Result<seki::llm::ChatResponse, LlmError> {
    let m = OpenaiModel::new("remote", p).unwrap();
    m.chat(
        &[Message::system("be brief"), Message::user("hello")],
        &ChatOptions::default(),
    )
    .await
}

#[tokio::test]
async fn correct_server_answers_with_usage_cost_key_and_headers() {
    let server = Server::start(vec![Reply::Ok("hi there")]).await;
    let mut p = profile(&server.url);
    std::env::set_var("SEKI_TEST_KEY_OK", "sk-loopback-secret");
    p.api_key_env = Some("SEKI_TEST_KEY_OK".into());
    p.headers.insert("X-Team".into(), "nas".into());
    let m = OpenaiModel::new("remote", &p).unwrap();
    assert!(!format!("{m:?}").contains("sk-loopback-secret"));
    let schema = serde_json::json!({"type": "object", "properties": {"a": {"type": "integer"}}});
    let r = m
        .chat(
            &[Message::user("hello")],
            &ChatOptions {
                seed: Some(5),
                constraint: Some(Constraint::JsonSchema(schema.clone())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(r.text, "hi there");
    assert_eq!(r.usage.prompt_tokens, 12);
    assert_eq!(r.usage.completion_tokens, 5);
    assert_eq!(r.model, "loopback-model");
    let cost = r.cost_usd.unwrap();
    assert!(
        (cost - (12.0 * 1.0 + 5.0 * 4.0) / 1e6).abs() < 1e-12,
        "{cost}"
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    let head = seen[0].head.to_ascii_lowercase();
    assert!(head.starts_with("post /v1/chat/completions "), "{head}");
    assert!(
        head.contains("authorization: bearer sk-loopback-secret"),
        "{head}"
    );
    assert!(head.contains("x-team: nas"), "{head}");
    let body: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["seed"], 5);
    assert_eq!(body["messages"][0]["content"], "hello");
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(body["response_format"]["json_schema"]["schema"], schema);
}

#[tokio::test]
async fn retry_after_is_honoured_on_429() {
    let server = Server::start(vec![
        Reply::Status(429, r#"{"error":{"message":"slow down"}}"#, Some("1")),
        Reply::Ok("done"),
    ])
    .await;
    let r = ask(&profile(&server.url)).await.unwrap();
    assert_eq!(r.text, "done");
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    // The backoff alone would wait about 10 ms; Retry-After asks for 1 s.
    assert!(seen[1].at.duration_since(seen[0].at) >= Duration::from_millis(950));
}

#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    let server = Server::start(vec![
        Reply::Status(500, "boom", None),
        Reply::Status(503, "busy", None),
        Reply::Ok("third time"),
    ])
    .await;
    let r = ask(&profile(&server.url)).await.unwrap();
    assert_eq!(r.text, "third time");
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn persistent_500_gives_a_clear_error_after_the_last_try() {
    let server = Server::start(vec![Reply::Status(
        500,
        r#"{"error":{"message":"model crashed"}}"#,
        None,
    )])
    .await;
    let mut p = profile(&server.url);
    p.max_retries = 2;
    let e = ask(&p).await.unwrap_err();
    assert!(
        matches!(e, LlmError::Exhausted { attempts: 3, .. }),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("gave up after 3 attempts")
            && msg.contains("HTTP 500")
            && msg.contains("model crashed"),
        "{msg}"
    );
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn client_errors_fail_at_once_with_the_servers_message() {
    let server = Server::start(vec![Reply::Status(
        401,
        r#"{"error":{"message":"Incorrect API key provided"}}"#,
        None,
    )])
    .await;
    let e = ask(&profile(&server.url)).await.unwrap_err();
    match &e {
        LlmError::Http {
            status, message, ..
        } => {
            assert_eq!(*status, 401);
            assert_eq!(message, "Incorrect API key provided");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn a_hang_past_the_timeout_is_retried_and_reported() {
    let server = Server::start(vec![
        Reply::Hang(Duration::from_secs(30)),
        Reply::Ok("awake"),
    ])
    .await;
    let mut p = profile(&server.url);
    p.timeout_seconds = 0.3;
    let r = ask(&p).await.unwrap();
    assert_eq!(r.text, "awake");
    assert_eq!(server.seen().len(), 2);

    let server = Server::start(vec![Reply::Hang(Duration::from_secs(30))]).await;
    let mut p = profile(&server.url);
    p.timeout_seconds = 0.2;
    p.max_retries = 1;
    let e = ask(&p).await.unwrap_err().to_string();
    assert!(
        e.contains("gave up after 2 attempts") && e.contains("no reply within"),
        "{e}"
    );
}

#[tokio::test]
async fn truncated_and_non_json_bodies_are_retried_and_reported() {
    let server = Server::start(vec![Reply::Truncated, Reply::NotJson, Reply::Ok("clean")]).await;
    let r = ask(&profile(&server.url)).await.unwrap();
    assert_eq!(r.text, "clean");
    assert_eq!(server.seen().len(), 3);

    let server = Server::start(vec![Reply::NotJson]).await;
    let mut p = profile(&server.url);
    p.max_retries = 1;
    let e = ask(&p).await.unwrap_err().to_string();
    assert!(
        e.contains("malformed reply") && e.contains("not JSON"),
        "{e}"
    );

    let server = Server::start(vec![Reply::Truncated]).await;
    let mut p = profile(&server.url);
    p.max_retries = 0;
    let e = ask(&p).await.unwrap_err().to_string();
    assert!(e.contains("gave up after 1 attempts"), "{e}");
}

#[tokio::test]
async fn dropped_connections_and_refused_ports_are_connection_errors() {
    let server = Server::start(vec![Reply::Drop, Reply::Ok("back")]).await;
    assert_eq!(ask(&profile(&server.url)).await.unwrap().text, "back");

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut p = profile(&format!("http://127.0.0.1:{port}/v1"));
    p.max_retries = 1;
    let e = ask(&p).await.unwrap_err().to_string();
    assert!(
        e.contains("gave up after 2 attempts") && e.contains("connection failed"),
        "{e}"
    );
}

#[tokio::test]
async fn errors_never_contain_the_key() {
    let server = Server::start(vec![Reply::Status(403, "forbidden", None)]).await;
    let mut p = profile(&server.url);
    std::env::set_var("SEKI_TEST_KEY_LEAK", "sk-never-print-me");
    p.api_key_env = Some("SEKI_TEST_KEY_LEAK".into());
    let e = ask(&p).await.unwrap_err();
    assert!(!format!("{e} {e:?}").contains("sk-never-print-me"));
}

// ---- through the CLI ----

/// A config with a remote profile pointing at `url`.
fn remote_config(dir: &std::path::Path, url: &str, extra: &str) -> std::path::PathBuf {
    let cfg = dir.join("llm.toml");
    std::fs::write(
        &cfg,
        format!(
            "[llm]\ndefault_profile = \"remote\"\n[llm.profiles.remote]\nkind = \"openai\"\nbase_url = \"{url}\"\nmodel = \"m\"\nbackoff_initial_seconds = 0.01\n{extra}"
        ),
    )
    .unwrap();
    cfg
}

fn seki(cfg: &std::path::Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_seki"));
    c.arg("--config").arg(cfg).env_remove("RUST_LOG");
    c
}

#[test]
fn cli_chat_prints_the_reply_and_usage() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(Server::start(vec![Reply::Ok("{\"a\": 3}")]));
    let dir = tempfile::tempdir().unwrap();
    let cfg = remote_config(
        dir.path(),
        &server.url,
        "price_prompt_per_million = 1.0\nprice_completion_per_million = 2.0\n",
    );
    let schema = dir.path().join("s.json");
    std::fs::write(
        &schema,
        r#"{"type": "object", "properties": {"a": {"type": "integer", "maximum": 5}}, "required": ["a"]}"#,
    )
    .unwrap();
    let (ok, out, err) = common::run(
        seki(&cfg)
            .args(["llm", "chat", "say json", "--schema"])
            .arg(&schema),
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "{\"a\": 3}");
    assert!(
        err.contains("usage: 12 prompt + 5 completion tokens") && err.contains("cost $"),
        "{err}"
    );
}

#[test]
fn cli_chat_rejects_a_reply_that_breaks_the_schema() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(Server::start(vec![Reply::Ok("{\"a\": 9}")]));
    let dir = tempfile::tempdir().unwrap();
    let cfg = remote_config(dir.path(), &server.url, "");
    let schema = dir.path().join("s.json");
    std::fs::write(
        &schema,
        r#"{"type": "object", "properties": {"a": {"type": "integer", "maximum": 5}}, "required": ["a"]}"#,
    )
    .unwrap();
    let err = common::fails(
        seki(&cfg)
            .args(["llm", "chat", "x", "--schema"])
            .arg(&schema),
    );
    assert!(
        err.contains("does not satisfy the schema") && err.contains("#/a"),
        "{err}"
    );
}

#[test]
fn cli_chat_checks_a_pattern_and_tells_the_server() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(Server::start(vec![
        Reply::Ok("conv3 | conv1 skip | avg conv3 none"),
        Reply::Ok("conv3 | conv1 | avg conv3 none"),
    ]));
    let dir = tempfile::tempdir().unwrap();
    let cfg = remote_config(dir.path(), &server.url, "");
    let pattern = seki::space::notation::arch_pattern(seki::space::Space::Nb201, 1);
    let out = common::ok(seki(&cfg).args(["llm", "chat", "x", "--regex", &pattern]));
    assert_eq!(out.trim(), "conv3 | conv1 skip | avg conv3 none");
    let err = common::fails(seki(&cfg).args(["llm", "chat", "x", "--regex", &pattern]));
    assert!(err.contains("does not satisfy the pattern"), "{err}");
    // No response format takes a pattern: the server is told in a system message.
    let bodies: Vec<serde_json::Value> = server
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    let sys = bodies[0]["messages"].as_array().unwrap().last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        sys.contains("regular expression") && sys.contains("conv3"),
        "{sys}"
    );
    assert!(bodies[0].get("response_format").is_none_or(|v| v.is_null()));
}

#[test]
fn cli_setup_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    // unknown profile
    let cfg = remote_config(dir.path(), "http://127.0.0.1:9/v1", "");
    let err = common::fails(seki(&cfg).args(["llm", "chat", "x", "--llm", "nope"]));
    assert!(
        err.contains("unknown LLM profile 'nope'") && err.contains("remote"),
        "{err}"
    );
    // bad URL: the config names the key and line
    let cfg = remote_config(dir.path(), "htp:/nowhere", "");
    let err = common::fails(seki(&cfg).args(["llm", "chat", "x"]));
    assert!(
        err.contains("llm.toml:5: llm.profiles.remote.base_url") && err.contains("http://"),
        "{err}"
    );
    // missing key variable
    let cfg = remote_config(
        dir.path(),
        "http://127.0.0.1:9/v1",
        "api_key_env = \"SEKI_TEST_UNSET_KEY_VAR\"\n",
    );
    let err = common::fails(
        seki(&cfg)
            .args(["llm", "chat", "x"])
            .env_remove("SEKI_TEST_UNSET_KEY_VAR"),
    );
    assert!(
        err.contains("SEKI_TEST_UNSET_KEY_VAR") && err.contains("not set"),
        "{err}"
    );
    // an unknown key in a profile
    let cfg = remote_config(dir.path(), "http://127.0.0.1:9/v1", "temprature = 1\n");
    let err = common::fails(seki(&cfg).args(["llm", "chat", "x"]));
    assert!(err.contains("temprature"), "{err}");
}

// ---- more faults: a stalled body, Retry-After dates, content: null, 429s ----

#[tokio::test]
async fn a_body_that_stalls_after_the_headers_is_a_timeout_and_retried() {
    let server = Server::start(vec![Reply::StallAfterHeaders, Reply::Ok("whole")]).await;
    let mut p = profile(&server.url);
    p.timeout_seconds = 0.5;
    assert_eq!(ask(&p).await.unwrap().text, "whole");
    assert_eq!(server.seen().len(), 2);

    let server = Server::start(vec![Reply::StallAfterHeaders]).await;
    let mut p = profile(&server.url);
    p.timeout_seconds = 0.3;
    p.max_retries = 1;
    let e = ask(&p).await.unwrap_err().to_string();
    assert!(
        e.contains("gave up after 2 attempts") && e.contains("no reply within 0.3 s"),
        "{e}"
    );
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    let server = Server::start(vec![Reply::RetryAt(3), Reply::Ok("later")]).await;
    let mut p = profile(&server.url);
    p.backoff_max_seconds = 10.0;
    assert_eq!(ask(&p).await.unwrap().text, "later");
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    // The date is 3 s ahead at whole-second resolution; the backoff alone
    // would wait about 10 ms.
    let waited = seen[1].at.duration_since(seen[0].at);
    assert!(waited >= Duration::from_millis(1900), "{waited:?}");
}

#[tokio::test]
async fn an_absurd_retry_after_falls_back_to_the_backoff() {
    // Found by inspection while fuzzing: a server sending 1e300 made the
    // client panic converting it to a Duration.
    let server = Server::start(vec![
        Reply::Status(429, "slow", Some("1e300")),
        Reply::Ok("fine"),
    ])
    .await;
    assert_eq!(ask(&profile(&server.url)).await.unwrap().text, "fine");
}

#[tokio::test]
async fn content_null_is_an_empty_reply_not_an_error() {
    let server = Server::start(vec![
        Reply::Message(r#"{"role": "assistant", "content": null}"#),
        Reply::Message(r#"{"role": "assistant", "content": null, "refusal": "I can't"}"#),
    ])
    .await;
    let p = profile(&server.url);
    let r = ask(&p).await.unwrap();
    assert_eq!(r.text, "");
    assert_eq!(r.finish, seki::llm::FinishReason::Stop);
    let r = ask(&p).await.unwrap();
    assert_eq!(
        r.finish,
        seki::llm::FinishReason::Other("refusal: I can't".into())
    );
    // Not retried: each call made one request.
    assert_eq!(server.seen().len(), 2);
}

#[tokio::test]
async fn a_stream_of_429s_is_a_rate_limit_error() {
    let server = Server::start(vec![Reply::Status(
        429,
        r#"{"error":{"message":"quota"}}"#,
        Some("0"),
    )])
    .await;
    let mut p = profile(&server.url);
    p.max_retries = 2;
    let e = ask(&p).await.unwrap_err();
    assert!(e.is_rate_limited(), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("rate limited") && msg.contains("3 attempts") && msg.contains("quota"),
        "{msg}"
    );
    assert_eq!(server.seen().len(), 3);
}

/// A NAS-Bench-201 seki session's config against the server at `url`.
fn session_config(dir: &std::path::Path, url: &str, extra: &str) -> std::path::PathBuf {
    remote_config(
        dir,
        url,
        &format!(
            "max_retries = 2\n{extra}\n[evaluator.nb201]\ntable = \"{}\"\n[search]\nspace = \"nb201\"\nstrategy = \"seki\"\nkb_records = \"all\"\n[kb]\ndir = \"kb\"\n[agent]\nmax_tokens_text = 48\n",
            common::table().display()
        ),
    )
}

const ARCH_REPLY: &str = "Use more convolutions: |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|";

#[test]
fn a_session_rate_limited_to_the_end_stops_cleanly_and_resumes() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(Server::start(vec![Reply::Status(
        429,
        r#"{"error":{"message":"tokens per minute exceeded"}}"#,
        Some("0"),
    )]));
    let dir = tempfile::tempdir().unwrap();
    let cfg = session_config(dir.path(), &server.url, "");
    let run = dir.path().join("r");
    let (ok, out, err) = common::run(
        seki(&cfg)
            .current_dir(dir.path())
            .args(["search", "--budget", "4", "--json", "--run-dir"])
            .arg(&run),
    );
    assert!(
        ok,
        "a rate limit is a clean stop, not an error:\n{out}\n{err}"
    );
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    let reason = s["stop_reason"].as_str().unwrap();
    assert!(
        reason.starts_with("LLM rate limit")
            && reason.contains("HTTP 429")
            && reason.contains("tokens per minute exceeded"),
        "{reason}"
    );
    // The seed was evaluated before the first LLM call; three tries were made.
    assert_eq!(s["evaluations"], 1);
    assert_eq!(server.seen().len(), 3);
    let j = common::journal(&run);
    assert_eq!(j.last().unwrap()["event"], "end");
    assert_eq!(j.last().unwrap()["reason"], reason);
    assert!(run.join("summary.json").is_file() && run.join("report.md").is_file());

    // The server lets us in again: the session continues to its budget.
    server.set_script(vec![Reply::Ok(ARCH_REPLY)]);
    let out = common::ok(
        seki(&cfg)
            .current_dir(dir.path())
            .args(["search", "--json", "--resume"])
            .arg(&run),
    );
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["evaluations"], 4, "{s}");
    assert_eq!(s["stop_reason"], "budget: 4 evaluations");
}

/// Every file under `dir`, with its bytes.
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.push((p, bytes));
            }
        }
    }
    out
}

#[test]
fn a_canary_api_key_never_reaches_a_file_or_the_logs() {
    const CANARY: &str = "sk-canary-7f3a9c1e5b2d4a6f8e0c1d2b";
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Faults first, so that the retry paths log too.
    let server = rt.block_on(Server::start(vec![
        Reply::Status(500, r#"{"error":{"message":"overloaded"}}"#, None),
        Reply::Status(429, r#"{"error":{"message":"slow down"}}"#, Some("0")),
        Reply::Ok(ARCH_REPLY),
    ]));
    let dir = tempfile::tempdir().unwrap();
    let cfg = session_config(
        dir.path(),
        &server.url,
        "api_key_env = \"SEKI_CANARY_KEY\"\nheaders = { \"X-Team\" = \"nas\" }\nprice_prompt_per_million = 1.0\n",
    );
    let run = dir.path().join("r");
    let mut logs = String::new();
    let mut cmd = seki(&cfg);
    cmd.current_dir(dir.path())
        .env("SEKI_CANARY_KEY", CANARY)
        .args(["-vv", "search", "--budget", "5", "--run-dir"])
        .arg(&run);
    let (ok, out, err) = common::run(&mut cmd);
    assert!(ok, "{out}\n{err}");
    logs.push_str(&out);
    logs.push_str(&err);
    let out_dir = dir.path().join("report-out");
    for args in [
        vec![
            "report".to_string(),
            run.display().to_string(),
            "--out".into(),
            out_dir.display().to_string(),
        ],
        vec!["kb".into(), "list".into(), "--json".into()],
        vec!["kb".into(), "insights".into()],
    ] {
        let (ok, out, err) = common::run(
            seki(&cfg)
                .current_dir(dir.path())
                .env("SEKI_CANARY_KEY", CANARY)
                .arg("-vv")
                .args(&args),
        );
        assert!(ok, "{args:?}: {err}");
        logs.push_str(&out);
        logs.push_str(&err);
    }
    // The trace level of every crate (HTTP client included) as well.
    let (_, out, err) = common::run(
        seki(&cfg)
            .env("SEKI_CANARY_KEY", CANARY)
            .env("RUST_LOG", "trace")
            .args(["llm", "chat", "hi"]),
    );
    logs.push_str(&out);
    logs.push_str(&err);

    // The key was in play: the server got it with every request.
    let seen = server.seen();
    assert!(seen.len() >= 8, "{}", seen.len());
    assert!(seen.iter().all(|s| s
        .head
        .to_ascii_lowercase()
        .contains(&format!("authorization: bearer {CANARY}").to_ascii_lowercase())));
    assert!(
        err.contains("retrying") || logs.contains("retrying"),
        "the fault paths ran"
    );
    assert!(logs.contains("DEBUG"), "debug logging was on");
    assert!(!logs.contains(CANARY), "the key is in the output");
    let mut checked = 0;
    for d in [&run, &dir.path().join("kb"), &out_dir] {
        for (p, bytes) in files_under(d) {
            checked += 1;
            assert!(
                !bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()),
                "{} contains the key",
                p.display()
            );
        }
    }
    assert!(checked >= 8, "{checked} files checked");
    assert!(run.join("journal.jsonl").is_file() && out_dir.join("report.md").is_file());
}

/// `seki bench nb201 --strategy seki --llm PROFILE` runs unchanged against
/// an OpenAI-compatible server: here a loopback one answering from the
/// recorded replies of `tests/fixtures/seki-nb201-replies.jsonl`, in turn.
#[test]
fn the_nb201_benchmark_runs_seki_through_a_remote_server() {
    let recorded: Vec<&'static str> =
        std::fs::read_to_string(common::root().join("tests/fixtures/seki-nb201-replies.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                &*Box::leak(v["text"].as_str().unwrap().to_string().into_boxed_str())
            })
            .collect();
    let script: Vec<Reply> = recorded
        .iter()
        .cycle()
        .take(400)
        .map(|t| Reply::Ok(t))
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(Server::start(script));
    let dir = tempfile::tempdir().unwrap();
    let cfg = session_config(dir.path(), &server.url, "");
    let out = common::ok(seki(&cfg).current_dir(dir.path()).args([
        "bench",
        "nb201",
        "--strategy",
        "seki,rea",
        "--budget",
        "12",
        "--seeds",
        "2",
        "--llm",
        "remote",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = v.to_string();
    assert!(
        text.contains("\"seki\"") && text.contains("\"rea\""),
        "{text}"
    );
    // Every session's LLM calls went to the server, with the profile's model.
    let seen = server.seen();
    assert!(seen.len() >= 2 * 6, "{} requests", seen.len());
    for s in &seen {
        let body: serde_json::Value = serde_json::from_str(&s.body).unwrap();
        assert_eq!(body["model"], "m");
    }
}
