// figment::Jail closures return figment::Error, which is large; fine in tests.
#![allow(clippy::result_large_err)]

use super::*;
use figment::Jail;

#[test]
fn embedded_defaults_are_valid_and_loopback_only() {
    Jail::expect_with(|_| {
        let c = Config::load(None).unwrap();
        assert!(c.smtp.listen.iter().chain(&c.pop3.listen).all(|a| a.ip().is_loopback()));
        assert_eq!(c.local_domains, ["localhost"]);
        assert_eq!(c.smtp.max_recipients, 100);
        assert!(c.submission.require_auth && !c.smtp.require_auth);
        Ok(())
    });
}

#[test]
fn embedded_policy_defaults_match_the_plugin_runtime() {
    // Two copies of the defaults (server config, plugin-host) must not drift.
    Jail::expect_with(|_| {
        let c = Config::load(None).unwrap();
        assert_eq!(c.policy_config(), ferrymail_plugin_host::PolicyConfig::default());
        Ok(())
    });
}

#[test]
fn postmaster_of_every_domain_we_serve_rfc5321_4_5_1() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "t.toml",
            "local_domains = [\"Example.test\", \"localhost\"]\n[tenants.acme]\ndomains = [\"acme.test\"]\n",
        )?;
        let c = Config::load(Some(Path::new("t.toml"))).unwrap();
        assert_eq!(c.postmaster_address(), "postmaster@example.test");
        for a in ["postmaster@example.test", "PostMaster@LOCALHOST", "postmaster@acme.test"] {
            assert!(c.is_postmaster(a), "{a}");
        }
        for a in ["postmaster@other.test", "postmistress@acme.test", "postmaster"] {
            assert!(!c.is_postmaster(a), "{a}");
        }
        jail.create_file("u.toml", "postmaster = \"Admin@Example.test\"\n")?;
        assert_eq!(Config::load(Some(Path::new("u.toml"))).unwrap().postmaster_address(), "admin@example.test");
        jail.create_file("v.toml", "postmaster = \"admin\"\n")?;
        let e = Config::load(Some(Path::new("v.toml"))).unwrap_err().to_string();
        assert!(e.contains("postmaster: must be an address"), "{e}");
        Ok(())
    });
}

#[test]
fn tenant_domains_are_local() {
    Jail::expect_with(|jail| {
        jail.create_file("t.toml", "[tenants.acme]\ndomains = [\"acme.test\"]\n")?;
        let c = Config::load(Some(Path::new("t.toml"))).unwrap();
        assert!(c.is_local_domain("ACME.test") && c.is_local_domain("localhost"));
        assert!(!c.is_local_domain("other.test"));
        Ok(())
    });
}

#[test]
fn every_shipped_example_parses() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/config");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            Jail::expect_with(|_| {
                Config::load(Some(&path)).map_err(|e| format!("{}: {e}", path.display()))?;
                Ok(())
            });
            n += 1;
        }
    }
    assert!(n > 0, "no example configs found in {dir}");
}

#[test]
fn file_overrides_defaults_and_env_overrides_file() {
    Jail::expect_with(|jail| {
        jail.create_file("f.toml", "hostname = \"mx.example.test\"\n[smtp]\nlisten = [\"127.0.0.1:2525\"]\n")?;
        jail.set_env("FERRYMAIL_SMTP__MAX_RECIPIENTS", "150");
        let c = Config::load(Some(Path::new("f.toml"))).unwrap();
        assert_eq!(c.hostname, "mx.example.test");
        assert_eq!(c.smtp.listen, ["127.0.0.1:2525".parse().unwrap()]);
        assert_eq!(c.smtp.max_recipients, 150);
        assert_eq!(c.smtp.max_text_line, 1000, "unset keys keep their defaults");
        Ok(())
    });
}

#[test]
fn unknown_key_is_named() {
    Jail::expect_with(|jail| {
        jail.create_file("f.toml", "[smtp]\nlisten_on = [\"127.0.0.1:25\"]\n")?;
        let e = Config::load(Some(Path::new("f.toml"))).unwrap_err().to_string();
        assert!(e.contains("listen_on") && e.contains("smtp"), "{e}");
        assert!(!e.contains('\n'));
        Ok(())
    });
}

#[test]
fn bad_address_is_named() {
    Jail::expect_with(|jail| {
        jail.set_env("FERRYMAIL_POP3__LISTEN", "[\"nowhere:110\"]");
        let e = Config::load(None).unwrap_err().to_string();
        assert!(e.contains("pop3.listen"), "{e}");
        Ok(())
    });
}

#[test]
fn rfc_minimums_are_enforced() {
    Jail::expect_with(|jail| {
        jail.set_env("FERRYMAIL_SMTP__MAX_COMMAND_LINE", "100");
        let e = Config::load(None).unwrap_err().to_string();
        assert!(e.contains("smtp.max_command_line") && e.contains("512"), "{e}");
        Ok(())
    });
}

#[test]
fn missing_file_is_reported() {
    Jail::expect_with(|_| {
        let e = Config::load(Some(Path::new("/nonexistent/ferrymail.toml"))).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/ferrymail.toml"));
        Ok(())
    });
}

/// Issue 9: `ConfigError` reported only the first problem.
#[test]
fn every_problem_is_reported_at_once() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "f.toml",
            "hostname = \" \"\nmax_hops = 0\n[smtp]\nmax_command_line = 100\n[pop3]\nmax_command_line = 10\n[delivery]\nport = 0\n",
        )?;
        let e = Config::load(Some(Path::new("f.toml"))).unwrap_err();
        let keys = ["hostname", "max_hops", "smtp.max_command_line", "pop3.max_command_line", "delivery.port"];
        assert_eq!(e.problems.len(), keys.len(), "{e}");
        for key in keys {
            assert!(e.to_string().contains(&format!("config key {key}:")), "{key}: {e}");
        }
        assert!(!e.to_string().contains('\n'));
        Ok(())
    });
}

/// The ```toml blocks of README.md and docs/*.md that are ferrymail
/// configuration, with where each starts (file:line).
fn documented_config_snippets() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<_> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut snippets = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut current: Option<(usize, String)> = None;
        for (n, line) in text.lines().enumerate() {
            match (&mut current, line.trim_start()) {
                (None, "```toml") => current = Some((n + 1, String::new())),
                (Some((start, body)), "```") => {
                    // Cargo manifests for plugin authors are TOML too, not ours.
                    if !body.lines().any(|l| l.trim() == "[package]") {
                        snippets.push((format!("{}:{start}", file.display()), std::mem::take(body)));
                    }
                    current = None;
                }
                (Some((_, body)), _) => {
                    body.push_str(line);
                    body.push('\n');
                }
                (None, _) => {}
            }
        }
    }
    snippets
}

#[test]
fn every_config_snippet_in_readme_and_docs_loads() {
    // A reader copies these into their config: one that does not load as
    // written (a key landing in the wrong table, a renamed field) is a bug.
    let snippets = documented_config_snippets();
    assert!(snippets.len() >= 5, "found only {} snippets", snippets.len());
    let mut broken = Vec::new();
    for (place, body) in &snippets {
        Jail::expect_with(|jail| {
            jail.create_file("snippet.toml", body)?;
            if let Err(e) = Config::load(Some(Path::new("snippet.toml"))) {
                broken.push(format!("{place}: {e}"));
            }
            Ok(())
        });
    }
    assert!(broken.is_empty(), "documented config that does not load:\n{}", broken.join("\n"));
}

#[test]
fn store_defaults_to_sled_and_postgres_needs_a_url() {
    Jail::expect_with(|jail| {
        let c = Config::load(None).unwrap();
        assert_eq!(c.store.backend, StoreBackend::Sled);
        assert_eq!(c.node_name(), c.hostname, "node name defaults to the hostname");
        jail.create_file("pg.toml", "[store]\nbackend = \"postgres\"\n")?;
        let e = Config::load(Some(Path::new("pg.toml"))).unwrap_err().to_string();
        assert!(e.contains("config key store.url: must be set"), "{e}");
        jail.create_file("sled.toml", "[store]\nurl = \"postgres://fm@db/mail\"\n")?;
        let e = Config::load(Some(Path::new("sled.toml"))).unwrap_err().to_string();
        assert!(e.contains("config key store.url: is set but store.backend is \"sled\""), "{e}");
        jail.create_file("bad.toml", "[store]\nbackend = \"mysql\"\n")?;
        let e = Config::load(Some(Path::new("bad.toml"))).unwrap_err().to_string();
        assert!(e.contains("store.backend") && e.contains("mysql"), "{e}");
        Ok(())
    });
}

#[test]
fn a_bad_postgres_url_is_named_without_connecting() {
    Jail::expect_with(|jail| {
        for (url, why) in [
            ("postgres://fm@db:notaport/mail", "not a PostgreSQL URL"),
            ("postgres:///mail?user=fm", "names no host"),
            ("host=db dbname=mail", "names no user"),
            ("postgres://fm@db/mail?sslmode=require", "TLS to PostgreSQL is not supported"),
        ] {
            jail.set_env("FERRYMAIL_STORE__BACKEND", "postgres");
            jail.set_env("FERRYMAIL_STORE__URL", url);
            let e = Config::load(None).unwrap_err().to_string();
            assert!(e.contains("config key store.url:") && e.contains(why), "{url}: {e}");
        }
        for url in ["postgres://fm@db.example:5433/mail", "host=/run/postgresql user=fm dbname=mail"] {
            jail.set_env("FERRYMAIL_STORE__URL", url);
            assert!(Config::load(None).is_ok(), "{url}");
        }
        Ok(())
    });
}

#[test]
fn the_database_password_comes_from_a_file_or_the_environment_and_is_never_shown() {
    Jail::expect_with(|jail| {
        jail.set_env("FERRYMAIL_STORE__BACKEND", "postgres");
        jail.set_env("FERRYMAIL_STORE__URL", "postgres://fm@db/mail");
        jail.create_file("pw", "file secret\n")?;
        jail.create_file("f.toml", "[store]\npassword_file = \"pw\"\n")?;
        let c = Config::load(Some(Path::new("f.toml"))).unwrap();
        assert_eq!(c.store.read_password().unwrap().as_deref(), Some("file secret"), "trailing newline dropped");

        jail.create_file("missing.toml", "[store]\npassword_file = \"/nonexistent/pw\"\n")?;
        let e = Config::load(Some(Path::new("missing.toml"))).unwrap_err().to_string();
        assert!(e.contains("config key store.password_file: cannot read /nonexistent/pw"), "{e}");

        jail.set_env("FERRYMAIL_STORE__PASSWORD", "007");
        let c = Config::load(None).unwrap();
        assert_eq!(c.store.read_password().unwrap().as_deref(), Some("007"), "taken as written, not as a number");
        jail.set_env("FERRYMAIL_STORE__PASSWORD", "env secret");
        let e = Config::load(Some(Path::new("f.toml"))).unwrap_err().to_string();
        assert!(e.contains("both set"), "{e}");
        let c = Config::load(None).unwrap();
        assert_eq!(c.store.read_password().unwrap().as_deref(), Some("env secret"));
        let shown = format!("{}\n{:?}", toml::to_string(&c).unwrap(), c);
        assert!(!shown.contains("env secret"), "the password is never printed");
        Ok(())
    });
}
