//! Where a configuration comes from: pooler.toml as written, or a pgbouncer.ini (a file name
//! ending in `.ini`) converted to the pooler.toml it means. Used at startup, by `--check`,
//! `pgsluice convert` and RELOAD, so that an ini is read the same way by all of them.

use std::path::Path;

use super::error::{ConfigErrors, ConfigProblem};
use super::{from_ini, ini, Config};

/// A configuration file as pooler.toml text: the file itself, or a pgbouncer.ini (a name ending
/// in `.ini`) converted, with the warnings of the conversion and where each key came from.
#[derive(Debug)]
pub struct Source {
    pub toml: String,
    pub warnings: Vec<String>,
    converted: Option<from_ini::Converted>,
}

impl Source {
    pub fn read(path: &Path) -> Result<Source, ConfigErrors> {
        let unreadable = |e: String| ConfigErrors::single(ConfigProblem::new("", e));
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("ini"))
        {
            let entries = ini::read_file(path).map_err(unreadable)?;
            let converted = from_ini::convert(&entries);
            return Ok(Source {
                toml: converted.to_toml(&path.display().to_string()),
                warnings: converted.warnings.clone(),
                converted: Some(converted),
            });
        }
        let toml = std::fs::read_to_string(path)
            .map_err(|e| unreadable(format!("cannot read config file {}: {e}", path.display())))?;
        Ok(Source {
            toml,
            warnings: Vec::new(),
            converted: None,
        })
    }

    /// Parses `text` (this source's TOML, perhaps with SET overrides applied); problems of a
    /// converted pgbouncer.ini name its file and line.
    pub fn parse(&self, text: &str, base_dir: &Path) -> Result<Config, ConfigErrors> {
        let parsed = Config::parse(text, base_dir);
        match &self.converted {
            None => parsed,
            Some(c) if c.refused.is_empty() => parsed.map_err(|e| c.locate(e)),
            Some(c) => Err(c.locate(parsed.err().unwrap_or(ConfigErrors(Vec::new())))),
        }
    }
}
