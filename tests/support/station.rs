//! A workstation's agent running in this process with operators nurse1, tech1 and admin1
//! (PINs 111111, 222222, 333333), a spool printer unless told otherwise, and the example
//! orders: its router driven directly (`oneshot`) or over HTTP at [`Station::base`].

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use coi_agent::agent::Agent;
use coi_agent::config::Config;
use coi_agent::journal::Journal;
use coi_agent::operators::{Role, hash_pin};
use serde_json::Value;
use tower::ServiceExt as _;

use super::tempdb::TempDb;

const ORDERS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/example-orders.json"
);

/// An agent running in this process, its router driven directly.
pub struct Station {
    pub dir: TempDb,
    pub agent: Agent,
    pub host: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Station {
    /// An agent at `site` with a spool printer, `extra` configuration, and `idle` as the
    /// screens' idle time.
    pub async fn start(name: &str, site: &str, extra: &str, idle: Option<Duration>) -> Station {
        Station::start_with(name, site, None, extra, idle).await
    }

    /// As [`Station::start`] with the printer at `printer` (a URI and profile line pair) in
    /// place of the spool.
    pub async fn start_with(
        name: &str,
        site: &str,
        printer: Option<&str>,
        extra: &str,
        idle: Option<Duration>,
    ) -> Station {
        let dir = TempDb::new(name);
        let base = dir.0.parent().unwrap().to_path_buf();
        let mut orders: Value =
            serde_json::from_str(&std::fs::read_to_string(ORDERS).unwrap()).unwrap();
        for order in orders["orders"].as_array_mut().unwrap() {
            order["expires_at"] = "2099-12-31T23:59:00-05:00".into();
        }
        std::fs::write(base.join("orders.json"), orders.to_string()).unwrap();
        std::fs::create_dir_all(base.join("spool")).unwrap();
        let text = format!(
            "[site]\nid = \"{site}\"\nworkstation = \"ws-{name}\"\n[journal]\npath = \"journal.sqlite\"\n\
             [orders]\nsource = \"file\"\nfile = \"orders.json\"\n\
             [[printers]]\nname = \"bench\"\n{}\n\
             [api]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"api.token\"\n{extra}",
            printer.map_or_else(
                || format!("uri = \"spool://{}\"", base.join("spool").display()),
                str::to_owned
            )
        );
        std::fs::write(base.join("coi-agent.toml"), &text).unwrap();
        let mut config = Config::load(&base.join("coi-agent.toml")).unwrap();
        if let Some(idle) = idle {
            config.ui_idle = idle;
        }
        {
            let mut journal = Journal::open(&config.journal).unwrap();
            for (id, role, pin) in [
                ("nurse1", Role::Nurse, "111111"),
                ("tech1", Role::Tech, "222222"),
                ("admin1", Role::Admin, "333333"),
            ] {
                let hash = hash_pin(pin).unwrap();
                journal
                    .add_operator(id, &format!("Op {id}"), role, &hash, None)
                    .unwrap()
                    .unwrap();
            }
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (expose, exposed) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(coi_agent::agent::run_exposing(
            config,
            async move {
                let _ = stopped.await;
            },
            Some(expose),
        ));
        let agent = tokio::time::timeout(Duration::from_secs(10), exposed)
            .await
            .expect("the agent starts")
            .unwrap();
        // The first order sync.
        for _ in 0..500 {
            if agent.journal().orders().await.is_ok_and(|b| !b.is_empty()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let host = agent.listen().to_string();
        Station {
            dir,
            agent,
            host,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// How many print jobs the journal holds.
    pub fn jobs(&self) -> i64 {
        rusqlite::Connection::open(&self.dir.0)
            .unwrap()
            .query_row("SELECT COUNT(*) FROM print_jobs", [], |r| r.get(0))
            .unwrap()
    }

    /// Changes the order file with `edit` and syncs it into the journal's cache (as `coi-agent
    /// orders sync` does beside a running `serve`).
    pub async fn edit_orders(&self, edit: impl FnOnce(&mut Vec<Value>)) {
        let base = self.dir.0.parent().unwrap();
        let path = base.join("orders.json");
        let mut orders: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        edit(orders["orders"].as_array_mut().unwrap());
        std::fs::write(&path, orders.to_string()).unwrap();
        let synced = std::process::Command::new(env!("CARGO_BIN_EXE_coi-agent"))
            .args(["orders", "sync", "--config"])
            .arg(base.join("coi-agent.toml"))
            .output()
            .unwrap();
        assert!(
            synced.status.success(),
            "{}",
            String::from_utf8_lossy(&synced.stderr)
        );
    }

    /// The agent's HTTP address.
    pub fn base(&self) -> String {
        format!("http://{}", self.host)
    }

    pub fn journal(&self) -> Journal {
        Journal::open_read_only(&self.dir.0).unwrap()
    }

    pub async fn send(
        &self,
        request: Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let response = coi_agent::api::router(self.agent.clone())
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 16 << 20)
            .await
            .unwrap();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    pub fn get(&self, path: &str, cookie: Option<&str>) -> Request<Body> {
        let mut request = Request::get(path).header(header::HOST, &self.host);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, format!("coi_session={cookie}"));
        }
        request.body(Body::empty()).unwrap()
    }

    pub fn post(&self, path: &str, cookie: Option<&str>, form: &str) -> Request<Body> {
        let mut request = Request::post(path)
            .header(header::HOST, &self.host)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("origin", format!("http://{}", self.host))
            .header("sec-fetch-site", "same-origin")
            .header("hx-request", "true");
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, format!("coi_session={cookie}"));
        }
        request.body(Body::from(form.to_owned())).unwrap()
    }

    /// Signs in; the session id from the cookie, whose attributes are checked.
    pub async fn sign_in(&self, operator: &str, pin: &str) -> String {
        let (status, headers, body) = self
            .send(self.post("/login", None, &format!("operator={operator}&pin={pin}")))
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
        let cookie = headers[header::SET_COOKIE].to_str().unwrap().to_owned();
        assert!(
            cookie.contains("HttpOnly")
                && cookie.contains("SameSite=Strict")
                && cookie.contains("Path=/"),
            "{cookie}"
        );
        let value = cookie
            .strip_prefix("coi_session=")
            .unwrap()
            .split(';')
            .next()
            .unwrap();
        value.to_owned()
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task.take().unwrap()).await;
    }
}
