use clap::Parser;
use ferrymail::cli::{
    CertAction, Cli, Command, ConfigAction, DkimAction, PluginAction, QueueAction, StoreAction, UserAction,
};
use ferrymail::config::Config;
use ferrymail::control::{self, Request};
use ferrymail_plugin_host::PluginSummary;
use std::io::BufRead;
use std::process::ExitCode;

/// glibc's malloc raises its mmap threshold to the largest block freed so
/// far (up to 32 MiB): after the first argon2 check frees its 19 MiB, every
/// smaller allocation comes from the thread arenas and stays there, and
/// POP3 logins during an SMTP load held ~200 MB of RSS (83 MB with a fixed
/// threshold, the same rate). glibc reads the setting only at process
/// start, so `serve` executes itself once with it set, unless the
/// environment already chooses (an operator's own malloc settings win).
fn fixed_malloc_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        const VAR: &str = "MALLOC_MMAP_THRESHOLD_";
        if std::env::var_os(VAR).is_some() || std::env::var_os("GLIBC_TUNABLES").is_some() {
            return;
        }
        let Ok(exe) = std::env::current_exe() else { return };
        let e = std::process::Command::new(exe).args(std::env::args_os().skip(1)).env(VAR, "1048576").exec();
        // Still here: the server runs on with glibc's dynamic threshold.
        eprintln!("ferrymail: could not restart with a fixed malloc threshold ({e}); continuing");
    }
}

fn main() -> ExitCode {
    // Invoked through a `sendmail` or `mailq` symlink, as Postfix's binary is.
    match invoked_as().as_deref() {
        Some("sendmail") => return sendmail_main(),
        Some("mailq") => return mailq_main(),
        _ => {}
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, no backtrace: operators read this, not developers.
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("ferrymail: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    // Needs no configuration (it helps write one).
    if let Command::Cert { action: CertAction::SelfSigned { hostname, out_dir, force } } = &cli.command {
        return cert_self_signed(hostname, out_dir, *force);
    }
    if let Command::Plugin { action: PluginAction::New { name, lang, hooks, dir } } = &cli.command {
        return plugin_new(name, *lang, hooks, dir.as_deref());
    }
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => {
            fixed_malloc_threshold();
            ferrymail::logging::init(&config.log.level, config.log.format);
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(ferrymail::server::serve(config, cli.config))
        }
        Command::User { action } => {
            let request = match action {
                UserAction::Add { address, .. } => {
                    validate_address(&address, &config)?;
                    Request::UserAdd { password_hash: ferrymail::passwords::hash(&read_password()?)?, address }
                }
                UserAction::Del { address } => Request::UserDel { address },
                UserAction::List => Request::UserList,
                UserAction::Passwd { address, .. } => {
                    Request::UserPasswd { password_hash: ferrymail::passwords::hash(&read_password()?)?, address }
                }
            };
            respond(control::client::run(&config, &request)?)
        }
        Command::Reload | Command::Plugin { action: PluginAction::Reload } => {
            respond(control::client::run(&config, &Request::Reload)?)
        }
        Command::Plugin { action: PluginAction::Check { file } } => plugin_check(&file, &config),
        Command::Plugin { action: PluginAction::Test { record: Some(out), listen, to, .. } } => {
            let to = to.or_else(|| config.smtp.listen.first().copied());
            let to = to.ok_or_else(|| anyhow::anyhow!("--record needs --to: the config has no smtp.listen address"))?;
            small_runtime()?.block_on(ferrymail::plugin_test::record::record(&config, listen, to, &out))
        }
        Command::Plugin { action: PluginAction::Test { file, transcript, tenant, name, .. } } => {
            let (Some(file), Some(transcript)) = (file, transcript) else {
                anyhow::bail!("plugin test needs PLUGIN.wasm and --transcript FILE (or --record FILE)");
            };
            let args = ferrymail::plugin_test::Args {
                wasm: &file,
                transcript: &transcript,
                tenant: tenant.as_deref(),
                name: name.as_deref(),
            };
            let passed = small_runtime()?.block_on(ferrymail::plugin_test::run(config, cli.config.as_deref(), args))?;
            if !passed {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Plugin { action: PluginAction::List } => plugin_list(&config, cli.config.as_deref()),
        Command::Queue { action } => {
            let request = match action {
                QueueAction::List { json } => Request::QueueList { json },
                QueueAction::Show { id, json } => Request::QueueShow { id, json },
                QueueAction::Flush { id } => Request::QueueFlush { id },
                QueueAction::Delete { id } => Request::QueueDelete { id },
                QueueAction::Bounce { id } => Request::QueueBounce { id },
            };
            respond(control::client::run(&config, &request)?)
        }
        Command::Store { action: StoreAction::Migrate } => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            println!("{}", runtime.block_on(ferrymail::control::store_admin::migrate(&config))?);
            Ok(())
        }
        Command::Store { action: StoreAction::Copy { from, to } } => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let started = std::time::Instant::now();
            let copied = runtime.block_on(ferrymail::control::store_copy::copy(&config, &from, &to))?;
            println!("{copied} in {:.1} s", started.elapsed().as_secs_f64());
            Ok(())
        }
        Command::Sendmail(args) => std::process::exit(ferrymail::sendmail::run(*args, cli.config.as_deref()).into()),
        Command::Trace { id, json } => respond(control::client::run(&config, &Request::Trace { id, json })?),
        Command::Mailq => std::process::exit(ferrymail::sendmail::mailq(&config).into()),
        Command::Dkim { action } => dkim(&config, action),
        Command::Cert { .. } | Command::Plugin { action: PluginAction::New { .. } } => {
            unreachable!("handled before the configuration is loaded")
        }
        Command::Config { action: ConfigAction::Check } => {
            load_plugins(&config, cli.config.as_deref())?;
            print!("{}", toml_string(&config)?);
            Ok(())
        }
    }
}

fn invoked_as() -> Option<String> {
    let argv0 = std::env::args_os().next()?;
    Some(std::path::Path::new(&argv0).file_name()?.to_string_lossy().into_owned())
}

fn sendmail_main() -> ExitCode {
    let args = ferrymail::sendmail::SendmailArgs::parse();
    ExitCode::from(ferrymail::sendmail::run(args, None))
}

fn mailq_main() -> ExitCode {
    match ferrymail::sendmail::load_config(None) {
        Ok(config) => ExitCode::from(ferrymail::sendmail::mailq(&config)),
        Err(e) => {
            eprintln!("mailq: {e:#}");
            ExitCode::from(ferrymail::sendmail::EX_SOFTWARE)
        }
    }
}

fn respond(response: control::Response) -> anyhow::Result<()> {
    if response.ok {
        for line in response.output {
            println!("{line}");
        }
        Ok(())
    } else {
        anyhow::bail!("{}", response.output.join("; "))
    }
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    anyhow::ensure!(!password.is_empty(), "no password on stdin");
    Ok(password)
}

fn validate_address(address: &str, config: &Config) -> anyhow::Result<()> {
    let Some((local, domain)) = address.rsplit_once('@') else {
        anyhow::bail!("{address} is not an address (user@domain)");
    };
    anyhow::ensure!(!local.is_empty() && !domain.is_empty(), "{address} is not an address (user@domain)");
    if !config.is_local_domain(domain) {
        anyhow::bail!(
            "{domain} is not in local_domains ({}); mail for it would never reach this account",
            config.local_domains.join(", ")
        );
    }
    Ok(())
}

fn toml_string(config: &Config) -> anyhow::Result<String> {
    Ok(toml::to_string(config)?)
}

fn small_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?)
}

fn plugin_new(
    name: &str,
    lang: ferrymail::plugin_new::Lang,
    hooks: &[ferrymail::plugin_new::Hook],
    dir: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let dir = dir.map(std::path::Path::to_path_buf).unwrap_or_else(|| name.into());
    let dir = ferrymail::plugin_new::create(&dir, name, lang, hooks)?;
    println!("created {} ({lang:?} plugin {name})", dir.display());
    println!("next: cd {} && make && ferrymail plugin check {name}.wasm", dir.display());
    Ok(())
}

fn plugin_check(file: &std::path::Path, config: &Config) -> anyhow::Result<()> {
    use ferrymail_plugin_host::{WIT_PACKAGE, WIT_VERSION, inspect};
    let wasm = std::fs::read(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let cache = ferrymail::plugin_test::cache_dir(config);
    let info = small_runtime()?
        .block_on(inspect(&wasm, cache.clone()))
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    println!("file: {} ({:.1} MB)", file.display(), wasm.len() as f64 / 1e6);
    let cache = match (info.cache_hit, &cache) {
        (Some(true), Some(dir)) => format!("from the cache in {}", dir.display()),
        (Some(false), Some(dir)) => format!("not in the cache; now stored in {}", dir.display()),
        _ => "no cache".to_string(),
    };
    println!("compile: {} ms ({cache})", info.compile_time.as_millis());
    // From the exports, whether or not the imports link.
    println!("hooks: {}", if info.hooks.is_empty() { "(none)".into() } else { info.hooks.join(", ") });
    println!("wit: {} (host implements {WIT_PACKAGE}@{WIT_VERSION})", info.wit_versions.join(", "));
    println!("imports: {}", info.imports.join(", "));
    for m in &info.missing {
        println!("missing import: {} (likely cause: {})", m.name, m.likely_cause);
    }
    for p in &info.problems {
        println!("problem: {p}");
    }
    let mut why: Vec<String> = info.missing.iter().map(|m| format!("imports {}", m.name)).collect();
    why.extend(info.problems.iter().cloned());
    anyhow::ensure!(info.compatible, "{} would not load: {}", file.display(), why.join("; "));
    println!("ok: loads on this host");
    Ok(())
}

/// Loads every configured plugin as `serve` would, without serving.
fn load_plugins(config: &Config, config_path: Option<&std::path::Path>) -> anyhow::Result<Vec<PluginSummary>> {
    use ferrymail_plugin_host::{PluginRuntime, testing::MemoryHost};
    let mut options = ferrymail::server::runtime_options(config, config_path);
    // A check must not create directories; the server's cache is used if there.
    options.cache_dir = options.cache_dir.filter(|d| d.is_dir());
    // Loading needs no server services; an in-memory host stands in.
    let runtime = small_runtime()?.block_on(PluginRuntime::new(
        &config.policy_config(),
        std::sync::Arc::new(MemoryHost::new()),
        options,
    ))?;
    Ok(runtime.plugins())
}

fn plugin_list(config: &Config, config_path: Option<&std::path::Path>) -> anyhow::Result<()> {
    let mut plugins = load_plugins(config, config_path)?;
    plugins.sort_by(|a, b| a.name.cmp(&b.name));
    for p in plugins {
        println!("{}\t{}\t{}", p.name, p.path, p.hooks.join(","));
    }
    Ok(())
}

/// `ferrymail dkim …`: works on data_dir/dkim directly; the server picks
/// up a changed active key by itself.
fn dkim(config: &Config, action: DkimAction) -> anyhow::Result<()> {
    use ferrymail::mailauth::keys;
    let root = config.dkim_dir();
    match action {
        DkimAction::Keygen { domain, selector, algorithm } => {
            let selector = selector.unwrap_or_else(keys::default_selector);
            let key = keys::generate(&root, &domain, &selector, algorithm)?;
            println!("; publish this record, then mail from {} is signed with it", key.domain);
            println!("{}", key.zone_line());
            if !key.active {
                println!("; not active yet: once the record is visible, run");
                println!(";   ferrymail dkim activate {} {}", key.domain, key.selector);
            }
        }
        DkimAction::Activate { domain, selector } => {
            let key = keys::activate(&root, &domain, &selector)?;
            println!("{} now signs with {}", key.domain, key.record_name());
        }
        DkimAction::List => {
            for k in keys::list(&root)? {
                let created = chrono::DateTime::<chrono::Utc>::from(k.created).format("%Y-%m-%d");
                let state = if k.active { "active" } else { "-" };
                println!("{}\t{}\t{}\t{state}\t{created}\t{}", k.domain, k.selector, k.algorithm.key_type(), k.txt);
            }
        }
    }
    Ok(())
}

/// `ferrymail cert self-signed`: the files, and the configuration that uses them.
fn cert_self_signed(hostname: &str, out_dir: &std::path::Path, force: bool) -> anyhow::Result<()> {
    anyhow::ensure!(
        !hostname.is_empty() && hostname.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '*')),
        "--hostname {hostname:?} is not a host name"
    );
    let file = hostname.replace('*', "_wildcard");
    let dir = std::path::absolute(out_dir)?;
    let (cert, key) = (dir.join(format!("{file}.crt")), dir.join(format!("{file}.key")));
    ferrymail::tls::write_self_signed(hostname, &cert, &key, force)
        .map_err(|e| anyhow::anyhow!("{e:#}{}", if force { "" } else { " (--force replaces existing files)" }))?;
    println!("[tls]\ncert = {:?}\nkey = {:?}", cert.display().to_string(), key.display().to_string());
    Ok(())
}
