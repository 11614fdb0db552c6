//! Server.xml parsing (being written).
use super::Config;

#[derive(Debug, Clone)]
pub struct Warning {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Invalid(String),
}

pub fn load(path: &std::path::Path) -> Result<(Config, Vec<Warning>), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display())))?;
    parse_str(&text, &|k| std::env::var(k).ok())
}

pub fn parse_str(_xml: &str, _env: &dyn Fn(&str) -> Option<String>) -> Result<(Config, Vec<Warning>), ConfigError> {
    Err(ConfigError::Invalid("not yet".into()))
}
