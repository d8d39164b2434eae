//! The directory services the demo's identity workflows talk to, on fixed loopback
//! ports: the Microsoft Graph fake (`tests/src/graph.rs`) and a throw-away OpenLDAP
//! with the AD schema and seed users (`tests/ldap/`). Matches the connections
//! `switchboard serve --demo` configures. Stop with Ctrl-C or SIGTERM; nothing is kept.

use anyhow::Context;
use clap::Parser;
use switchboard_tests::graph::{GraphFake, CLIENT_ID};
use switchboard_tests::Slapd;

#[derive(Parser)]
#[command(about = "Graph fake + OpenLDAP (AD schema) for the demo")]
struct Args {
    /// Where the Graph fake listens.
    #[arg(long, default_value = "127.0.0.1:8089")]
    graph: String,
    /// Loopback port for slapd (0: do not start it).
    #[arg(long, default_value_t = 3389)]
    ldap_port: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(&args.graph).await.with_context(|| format!("bind {}", args.graph))?;
    let graph = GraphFake::serve(listener)?;
    println!(
        "Graph fake: {}/v1.0 (token endpoint {}/<tenant>/oauth2/v2.0/token, client id {CLIENT_ID})",
        graph.url, graph.url
    );
    let _slapd = if args.ldap_port > 0 {
        let port = args.ldap_port;
        let slapd = tokio::task::spawn_blocking(move || Slapd::start_corp(Some(port))).await??;
        println!("OpenLDAP (AD schema): {} base dc=example,dc=com", slapd.url);
        Some(slapd)
    } else {
        None
    };
    println!("request log: curl {}/_fake/requests   throttle: curl -XPOST {}/_fake/throttle -d '{{\"count\":3,\"retry_after\":1}}'", graph.url, graph.url);
    // Ctrl-C or SIGTERM: return, so dropping the Slapd stops it too.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
