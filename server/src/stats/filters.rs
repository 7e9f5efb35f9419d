//! The `filters` parameter: `dimension==value;dimension!=value;dimension~text`, where `|`
//! separates alternatives (`page==/a|/b`). Values reach SQL only as bound parameters.

use duckdb::types::Value;

use crate::error::ApiError;

/// Whether a dimension is fixed for a whole visit (filtering keeps whole visits) or describes a
/// single event (filtering selects the visits that contain a matching event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Visit,
    Event,
}

pub struct FilterDimension {
    pub name: &'static str,
    pub column: &'static str,
    pub level: Level,
}

pub const FILTER_DIMENSIONS: &[FilterDimension] = &[
    FilterDimension {
        name: "page",
        column: "pathname",
        level: Level::Event,
    },
    FilterDimension {
        name: "hostname",
        column: "hostname",
        level: Level::Event,
    },
    FilterDimension {
        name: "event",
        column: "name",
        level: Level::Event,
    },
    FilterDimension {
        name: "entry_page",
        column: "entry_page",
        level: Level::Visit,
    },
    FilterDimension {
        name: "source",
        column: "source",
        level: Level::Visit,
    },
    FilterDimension {
        name: "channel",
        column: "source_class",
        level: Level::Visit,
    },
    FilterDimension {
        name: "referrer",
        column: "referrer",
        level: Level::Visit,
    },
    FilterDimension {
        name: "utm_source",
        column: "utm_source",
        level: Level::Visit,
    },
    FilterDimension {
        name: "utm_medium",
        column: "utm_medium",
        level: Level::Visit,
    },
    FilterDimension {
        name: "utm_campaign",
        column: "utm_campaign",
        level: Level::Visit,
    },
    FilterDimension {
        name: "utm_term",
        column: "utm_term",
        level: Level::Visit,
    },
    FilterDimension {
        name: "utm_content",
        column: "utm_content",
        level: Level::Visit,
    },
    FilterDimension {
        name: "browser",
        column: "browser",
        level: Level::Visit,
    },
    FilterDimension {
        name: "browser_version",
        column: "browser_version",
        level: Level::Visit,
    },
    FilterDimension {
        name: "os",
        column: "os",
        level: Level::Visit,
    },
    FilterDimension {
        name: "os_version",
        column: "os_version",
        level: Level::Visit,
    },
    FilterDimension {
        name: "device",
        column: "device",
        level: Level::Visit,
    },
    FilterDimension {
        name: "country",
        column: "country",
        level: Level::Visit,
    },
    FilterDimension {
        name: "region",
        column: "region",
        level: Level::Visit,
    },
    FilterDimension {
        name: "city",
        column: "city",
        level: Level::Visit,
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Is,
    IsNot,
    Contains,
    NotContains,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub column: &'static str,
    pub level: Level,
    pub operator: Operator,
    pub values: Vec<String>,
}

pub fn parse_filters(text: &str) -> Result<Vec<Filter>, ApiError> {
    text.split(';')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(parse_one)
        .collect()
}

fn parse_one(part: &str) -> Result<Filter, ApiError> {
    let operators = [
        ("!=", Operator::IsNot),
        ("==", Operator::Is),
        ("!~", Operator::NotContains),
        ("~", Operator::Contains),
    ];
    let (position, token, operator) = operators
        .iter()
        .filter_map(|(token, op)| part.find(token).map(|pos| (pos, *token, *op)))
        .min_by_key(|(pos, token, _)| (*pos, std::cmp::Reverse(token.len())))
        .ok_or_else(|| {
            ApiError::invalid(
                "filters",
                format!("filter {part:?} has no operator; use ==, !=, ~ or !~ (e.g. page==/blog)"),
            )
        })?;
    let name = part[..position].trim();
    let value = part[position + token.len()..].trim();
    let dimension = FILTER_DIMENSIONS
        .iter()
        .find(|d| d.name == name)
        .ok_or_else(|| {
            let known: Vec<&str> = FILTER_DIMENSIONS.iter().map(|d| d.name).collect();
            ApiError::invalid(
                "filters",
                format!(
                    "unknown filter dimension {name:?}; known: {}",
                    known.join(", ")
                ),
            )
        })?;
    let values: Vec<String> = value
        .split('|')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    if values.is_empty() {
        return Err(ApiError::invalid(
            "filters",
            format!("filter {part:?} has no value"),
        ));
    }
    Ok(Filter {
        column: dimension.column,
        level: dimension.level,
        operator,
        values,
    })
}

/// SQL text with positional parameters.
#[derive(Debug, Default, Clone)]
pub struct Sql {
    pub text: String,
    pub params: Vec<Value>,
}

/// `AND …` conditions for the filters of one level (empty text when none).
pub fn conditions(filters: &[Filter], level: Level) -> Sql {
    let mut sql = Sql::default();
    for filter in filters.iter().filter(|f| f.level == level) {
        let column = filter.column;
        let placeholders = vec!["?"; filter.values.len()].join(", ");
        let condition = match filter.operator {
            Operator::Is => format!("{column} IN ({placeholders})"),
            Operator::IsNot => format!("({column} IS NULL OR {column} NOT IN ({placeholders}))"),
            Operator::Contains => {
                let any: Vec<String> = filter
                    .values
                    .iter()
                    .map(|_| format!("contains(lower({column}), lower(?))"))
                    .collect();
                format!("({})", any.join(" OR "))
            }
            Operator::NotContains => {
                let none: Vec<String> = filter
                    .values
                    .iter()
                    .map(|_| format!("NOT contains(lower({column}), lower(?))"))
                    .collect();
                format!("({column} IS NULL OR ({}))", none.join(" AND "))
            }
        };
        sql.text.push_str(" AND ");
        sql.text.push_str(&condition);
        sql.params
            .extend(filter.values.iter().cloned().map(Value::Text));
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_operators_and_alternatives() {
        let filters =
            parse_filters("page==/blog|/docs;country!=DE;source~goo;browser!~fire").expect("valid");
        assert_eq!(filters.len(), 4);
        assert_eq!(
            (filters[0].column, filters[0].operator),
            ("pathname", Operator::Is)
        );
        assert_eq!(filters[0].values, vec!["/blog", "/docs"]);
        assert_eq!(filters[1].operator, Operator::IsNot);
        assert_eq!(filters[2].operator, Operator::Contains);
        assert_eq!(filters[3].operator, Operator::NotContains);
    }

    #[test]
    fn values_may_contain_operator_characters_after_the_first_operator() {
        let filters = parse_filters("page==/a==b").expect("valid");
        assert_eq!(filters[0].values, vec!["/a==b"]);
    }

    #[test]
    fn unknown_dimensions_and_missing_operators_are_refused() {
        assert!(
            parse_filters("colour==red")
                .expect_err("unknown")
                .message
                .contains("colour")
        );
        assert!(
            parse_filters("page")
                .expect_err("no op")
                .message
                .contains("no operator")
        );
        assert!(
            parse_filters("page==")
                .expect_err("no value")
                .message
                .contains("no value")
        );
    }

    #[test]
    fn values_become_parameters_never_sql() {
        let filters = parse_filters("page==x' OR 1=1 --").expect("valid");
        let sql = conditions(&filters, Level::Event);
        assert_eq!(sql.text, " AND pathname IN (?)");
        assert_eq!(sql.params, vec![Value::Text("x' OR 1=1 --".into())]);
    }
}
