//! The error type of the config module: every problem found in one pooler.toml, collected.
//! `Config::parse` and `Config::load` return all problems at once so a DBA fixes the file in
//! one pass. Messages never echo secret values (passwords, or source lines of syntax errors).

use std::fmt;

/// One thing wrong with the configuration, located by its dotted key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted TOML path such as `pooler.listen_port` or `databases.roster.pool_size`;
    /// empty for problems of the whole file (unreadable file, TOML syntax error).
    pub key: String,
    /// What is wrong and, where we can tell, how to fix it.
    pub message: String,
}

impl ConfigProblem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigProblem {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// All problems of one configuration file; never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.0))]
pub struct ConfigErrors(pub Vec<ConfigProblem>);

impl ConfigErrors {
    /// A single file-level problem (unreadable file, syntax error).
    pub fn single(problem: ConfigProblem) -> Self {
        ConfigErrors(vec![problem])
    }

    /// The problems, in the order they were found.
    pub fn problems(&self) -> &[ConfigProblem] {
        &self.0
    }
}

fn render(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_puts_one_problem_per_line() {
        let errors = ConfigErrors(vec![
            ConfigProblem::new("pooler.listen_port", "must be between 1 and 65535"),
            ConfigProblem::new("", "TOML syntax error at line 3, column 1: oops"),
        ]);
        assert_eq!(
            errors.to_string(),
            "pooler.listen_port: must be between 1 and 65535\n\
             TOML syntax error at line 3, column 1: oops"
        );
        assert_eq!(errors.problems().len(), 2);
    }

    #[test]
    fn is_a_std_error() {
        let err: Box<dyn std::error::Error> = Box::new(ConfigErrors::single(ConfigProblem::new(
            "pooler.verbose",
            "bad",
        )));
        assert_eq!(err.to_string(), "pooler.verbose: bad");
    }
}
