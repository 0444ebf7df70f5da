//! The standard OpenTelemetry variables, read once per component: where
//! spans go and over which OTLP transport, which traces are kept, and the
//! service's name. No endpoint (or `OTEL_SDK_DISABLED=true`) means no
//! tracing at all.

use hyper::Uri;

/// The variables [`Config::read`] reads (every component reads them).
pub const ENV: &[settings::Var] = &[
    settings::Var {
        file: &[settings::key(
            "telemetry.otlp_endpoint",
            settings::Kind::Text,
        )],
        names: &["OTEL_EXPORTER_OTLP_ENDPOINT"],
        used_by: "all",
        default: "unset: no spans exported",
        meaning: "OTLP collector, e.g. `http://127.0.0.1:4318` (`http/protobuf`, `/v1/traces` appended) or `http://127.0.0.1:4317` (`grpc`); plain `http://` only",
    },
    settings::Var {
        file: &[settings::key(
            "telemetry.otlp_traces_endpoint",
            settings::Kind::Text,
        )],
        names: &["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"],
        used_by: "all",
        default: "from `OTEL_EXPORTER_OTLP_ENDPOINT`",
        meaning: "OTLP traces URL, used as it is",
    },
    settings::Var {
        file: &[settings::key(
            "telemetry.otlp_protocol",
            settings::Kind::Text,
        )],
        names: &["OTEL_EXPORTER_OTLP_PROTOCOL"],
        used_by: "all",
        default: "`http/protobuf`",
        meaning: "`grpc` or `http/protobuf`",
    },
    settings::Var {
        file: &[settings::key("telemetry.sampler", settings::Kind::Text)],
        names: &["OTEL_TRACES_SAMPLER"],
        used_by: "all",
        default: "`parentbased_always_on`",
        meaning: "`always_on`, `always_off`, `traceidratio`, `parentbased_always_on`, `parentbased_always_off`, `parentbased_traceidratio`",
    },
    settings::Var {
        file: &[settings::key(
            "telemetry.sampler_arg",
            settings::Kind::Number,
        )],
        names: &["OTEL_TRACES_SAMPLER_ARG"],
        used_by: "all",
        default: "`1.0`",
        meaning: "share of new traces kept by the `traceidratio` samplers, 0 to 1",
    },
    settings::Var {
        file: &[settings::key(
            "telemetry.service_name",
            settings::Kind::Text,
        )],
        names: &["OTEL_SERVICE_NAME"],
        used_by: "all",
        default: "`grocery-<component>` (`grocery-gateway`, `grocery-users`, …)",
        meaning: "`service.name` of the exported spans",
    },
    settings::Var {
        file: &[settings::key(
            "telemetry.sdk_disabled",
            settings::Kind::Bool,
        )],
        names: &["OTEL_SDK_DISABLED"],
        used_by: "all",
        default: "`false`",
        meaning: "`true`: export nothing, whatever the endpoint",
    },
];

/// A component's tracing settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Where spans go; `None`: tracing is off.
    pub export: Option<Export>,
    /// Which traces are recorded.
    pub sampler: Sampler,
    /// `service.name` of every span.
    pub service: String,
}

/// An OTLP destination.
#[derive(Clone, Debug, PartialEq)]
pub struct Export {
    pub protocol: Protocol,
    /// The URL spans are sent to (for HTTP, with `/v1/traces`).
    pub endpoint: Uri,
}

/// An OTLP transport.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC (`TraceService/Export`).
    Grpc,
    /// OTLP/HTTP with a protobuf body.
    HttpProtobuf,
}

/// Which traces are recorded (the spec's samplers, `OTEL_TRACES_SAMPLER`).
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Sampler {
    /// Every span.
    AlwaysOn,
    /// None.
    AlwaysOff,
    /// Spans whose trace id falls within this share of all trace ids.
    TraceIdRatio(f64),
    /// What the parent span decided; the root sampler for a new trace.
    ParentBased(Root),
}

/// What decides for a new trace under [`Sampler::ParentBased`].
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Root {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio(f64),
}

impl Config {
    /// Tracing off: nothing recorded, nothing exported.
    pub fn off(service: &str) -> Self {
        Self {
            export: None,
            sampler: Sampler::ParentBased(Root::AlwaysOn),
            service: service.to_owned(),
        }
    }

    /// Reads [`ENV`]; `default_service` names the component when
    /// `OTEL_SERVICE_NAME` does not. Bad values are problems in `env`.
    pub fn read(env: &mut settings::Env, default_service: &str) -> Self {
        let service = env
            .get("OTEL_SERVICE_NAME")
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| default_service.to_owned());
        let disabled = match env.get("OTEL_SDK_DISABLED").as_deref().map(str::trim) {
            None | Some("") => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                env.problem(format!("OTEL_SDK_DISABLED={v:?} is not true or false"));
                false
            }
        };
        let sampler = sampler(env);
        let export = export(env);
        Self {
            export: export.filter(|_| !disabled),
            sampler,
            service,
        }
    }
}

fn export(env: &mut settings::Env) -> Option<Export> {
    let protocol = match env
        .get("OTEL_EXPORTER_OTLP_PROTOCOL")
        .as_deref()
        .map(str::trim)
    {
        None | Some("") | Some("http/protobuf") => Protocol::HttpProtobuf,
        Some("grpc") => Protocol::Grpc,
        Some(other) => {
            env.problem(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={other:?} is not grpc or http/protobuf"
            ));
            Protocol::HttpProtobuf
        }
    };
    let nonempty = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    let (name, url) = match nonempty(env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) {
        Some(url) => ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url.trim().to_owned()),
        None => {
            let base = nonempty(env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))?;
            let base = base.trim().trim_end_matches('/');
            let url = match protocol {
                // The spec: the signal's path is appended for HTTP, gRPC names no path.
                Protocol::HttpProtobuf => format!("{base}/v1/traces"),
                Protocol::Grpc => base.to_owned(),
            };
            ("OTEL_EXPORTER_OTLP_ENDPOINT", url)
        }
    };
    match url.parse::<Uri>() {
        Ok(endpoint) if endpoint.scheme_str() == Some("http") && endpoint.host().is_some() => {
            Some(Export { protocol, endpoint })
        }
        Ok(endpoint) if endpoint.scheme_str() == Some("https") => {
            env.problem(format!(
                "{name}={url:?}: TLS is not supported; send to a collector on a plain http:// address"
            ));
            None
        }
        _ => {
            env.problem(format!("{name}={url:?} is not an http:// URL"));
            None
        }
    }
}

fn sampler(env: &mut settings::Env) -> Sampler {
    let name = env.get("OTEL_TRACES_SAMPLER");
    let name = name.as_deref().map(str::trim).unwrap_or("");
    let mut ratio = || match env.get("OTEL_TRACES_SAMPLER_ARG").as_deref().map(str::trim) {
        None | Some("") => 1.0,
        Some(v) => match v.parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => r,
            _ => {
                env.problem(format!(
                    "OTEL_TRACES_SAMPLER_ARG={v:?} is not a number from 0 to 1"
                ));
                1.0
            }
        },
    };
    match name {
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::TraceIdRatio(ratio()),
        "" | "parentbased_always_on" => Sampler::ParentBased(Root::AlwaysOn),
        "parentbased_always_off" => Sampler::ParentBased(Root::AlwaysOff),
        "parentbased_traceidratio" => Sampler::ParentBased(Root::TraceIdRatio(ratio())),
        other => {
            env.problem(format!(
                "OTEL_TRACES_SAMPLER={other:?} is not one of always_on, always_off, traceidratio, \
                 parentbased_always_on, parentbased_always_off, parentbased_traceidratio"
            ));
            Sampler::ParentBased(Root::AlwaysOn)
        }
    }
}

impl Sampler {
    /// Whether a span of `trace_id` is recorded, given its parent's decision
    /// (`None` for a new trace).
    pub fn samples(&self, parent_sampled: Option<bool>, trace_id: &[u8; 16]) -> bool {
        match (self, parent_sampled) {
            (Sampler::AlwaysOn, _) => true,
            (Sampler::AlwaysOff, _) => false,
            (Sampler::TraceIdRatio(r), _) => within(*r, trace_id),
            (Sampler::ParentBased(_), Some(parent)) => parent,
            (Sampler::ParentBased(Root::AlwaysOn), None) => true,
            (Sampler::ParentBased(Root::AlwaysOff), None) => false,
            (Sampler::ParentBased(Root::TraceIdRatio(r)), None) => within(*r, trace_id),
        }
    }
}

/// Whether the trace id's low 63 bits fall within `ratio` of their range:
/// the same answer for the same trace in every component.
fn within(ratio: f64, trace_id: &[u8; 16]) -> bool {
    let mut low = [0u8; 8];
    low.copy_from_slice(&trace_id[8..]);
    let value = u64::from_be_bytes(low) >> 1;
    (value as f64) < ratio * (1u64 << 63) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Config, settings::ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut env = settings::Env::from_fn(move |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        });
        let config = Config::read(&mut env, "grocery-test");
        env.finish().map(|()| config)
    }

    #[test]
    fn without_an_endpoint_tracing_is_off() {
        let config = read(&[]).unwrap();
        assert_eq!(config, Config::off("grocery-test"));
    }

    #[test]
    fn http_appends_the_traces_path_and_grpc_takes_the_endpoint_as_it_is() {
        let http = read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]).unwrap();
        let export = http.export.unwrap();
        assert_eq!(export.protocol, Protocol::HttpProtobuf);
        assert_eq!(export.endpoint, "http://collector:4318/v1/traces");
        let grpc = read(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_SERVICE_NAME", "edge"),
        ])
        .unwrap();
        assert_eq!(grpc.service, "edge");
        let export = grpc.export.unwrap();
        assert_eq!(export.protocol, Protocol::Grpc);
        assert_eq!(export.endpoint, "http://collector:4317/");
        let own = read(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://other:9999/traces",
            ),
        ])
        .unwrap();
        assert_eq!(own.export.unwrap().endpoint, "http://other:9999/traces");
    }

    #[test]
    fn disabled_wins_over_an_endpoint() {
        let config = read(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_SDK_DISABLED", "TRUE"),
        ])
        .unwrap();
        assert_eq!(config.export, None);
    }

    #[test]
    fn samplers_and_their_ratio() {
        let sampler = |name: &str, arg: &str| {
            read(&[
                ("OTEL_TRACES_SAMPLER", name),
                ("OTEL_TRACES_SAMPLER_ARG", arg),
            ])
            .unwrap()
            .sampler
        };
        assert_eq!(sampler("always_on", ""), Sampler::AlwaysOn);
        assert_eq!(sampler("always_off", ""), Sampler::AlwaysOff);
        assert_eq!(sampler("traceidratio", "0.25"), Sampler::TraceIdRatio(0.25));
        assert_eq!(
            sampler("parentbased_traceidratio", "0"),
            Sampler::ParentBased(Root::TraceIdRatio(0.0))
        );
        assert_eq!(sampler("", ""), Sampler::ParentBased(Root::AlwaysOn));
    }

    #[test]
    fn each_bad_value_is_a_problem_naming_its_variable() {
        let err = read(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_TRACES_SAMPLER", "sometimes"),
            ("OTEL_SDK_DISABLED", "yes"),
        ])
        .unwrap_err()
        .to_string();
        for name in [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "OTEL_TRACES_SAMPLER",
            "OTEL_SDK_DISABLED",
        ] {
            assert!(err.contains(name), "{name} missing from {err}");
        }
        let err = read(&[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("OTEL_TRACES_SAMPLER_ARG"), "{err}");
        let err = read(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "https://collector/v1/traces",
        )])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") && err.contains("TLS"),
            "{err}"
        );
    }

    #[test]
    fn the_ratio_keeps_about_its_share_and_parents_decide_under_parentbased() {
        let kept = (0..10_000u64)
            .filter(|i| {
                let mut id = [0u8; 16];
                id[8..].copy_from_slice(&(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_be_bytes());
                Sampler::TraceIdRatio(0.3).samples(None, &id)
            })
            .count();
        assert!((2_700..3_300).contains(&kept), "{kept}");
        let id = [7u8; 16];
        assert!(!Sampler::TraceIdRatio(0.0).samples(None, &id));
        let parent_based = Sampler::ParentBased(Root::TraceIdRatio(0.0));
        assert!(parent_based.samples(Some(true), &id));
        assert!(!Sampler::ParentBased(Root::AlwaysOn).samples(Some(false), &id));
    }
}
