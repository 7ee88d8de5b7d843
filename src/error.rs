//! The one place that sees `rusqlite::Error`: every failure leaves the core as a
//! `StoreError` carrying a stable code name (`SQLITE_BUSY`, `ERR_STORE_CLOSED`, ...)
//! and a message that never contains session data.

use std::fmt;

use rusqlite::ffi;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError {
    pub code: String,
    pub message: String,
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        StoreError { code: code.to_string(), message: message.into() }
    }

    pub fn closed() -> Self {
        StoreError::new("ERR_STORE_CLOSED", "the store is closed")
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        match error {
            rusqlite::Error::SqliteFailure(failure, message) => {
                let code = primary_code_name(failure.extended_code);
                let message = message.unwrap_or_else(|| error_string(failure.extended_code));
                StoreError::new(code, with_cause(message, failure.extended_code))
            }
            rusqlite::Error::SqlInputError { error, msg, .. } => {
                StoreError::new(primary_code_name(error.extended_code), msg)
            }
            // Conversion and API misuse errors: describe the kind only, never values.
            other => StoreError::new("SQLITE_ERROR", describe_non_sqlite(&other)),
        }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(error: std::io::Error) -> Self {
        let code = match error.kind() {
            std::io::ErrorKind::PermissionDenied => "SQLITE_PERM",
            std::io::ErrorKind::NotFound => "SQLITE_CANTOPEN",
            _ => "SQLITE_IOERR",
        };
        StoreError::new(code, error.to_string())
    }
}

fn describe_non_sqlite(error: &rusqlite::Error) -> String {
    match error {
        rusqlite::Error::InvalidColumnType(_, name, ty) => {
            format!("column {name} holds a value of unexpected type {ty}")
        }
        rusqlite::Error::FromSqlConversionFailure(_, ty, _) => {
            format!("a stored value of type {ty} could not be read")
        }
        rusqlite::Error::Utf8Error(..) => "a stored text value is not valid UTF-8".to_string(),
        rusqlite::Error::NulError(_) => "a value contains a NUL byte where SQLite cannot take one".to_string(),
        other => other.to_string(),
    }
}

fn error_string(code: i32) -> String {
    // sqlite3_errstr returns a static string for any code.
    unsafe {
        let ptr = ffi::sqlite3_errstr(code);
        if ptr.is_null() {
            return "unknown error".to_string();
        }
        std::ffi::CStr::from_ptr(ptr).to_string_lossy().into_owned()
    }
}

/// SQLite's message for these says what failed, not why ("attempt to write a readonly
/// database" when the file itself is writable): the extended code knows the cause.
fn with_cause(message: String, extended_code: i32) -> String {
    let cause = match extended_code {
        ffi::SQLITE_READONLY_DIRECTORY => {
            "SQLITE_READONLY_DIRECTORY: the directory holding the database cannot be written, so SQLite \
             cannot create the -wal, -shm or -journal file it needs beside the database"
        }
        ffi::SQLITE_READONLY_CANTINIT => {
            "SQLITE_READONLY_CANTINIT: the WAL's shared-memory file (-shm) cannot be set up by this process"
        }
        ffi::SQLITE_READONLY_RECOVERY => {
            "SQLITE_READONLY_RECOVERY: the WAL must be recovered, which needs a process that can write the files"
        }
        ffi::SQLITE_CANTOPEN_ISDIR => "SQLITE_CANTOPEN_ISDIR: the path is a directory",
        _ => return message,
    };
    format!("{message} ({cause})")
}

/// The name of SQLite's primary result code (the low byte of an extended code).
pub fn primary_code_name(extended_code: i32) -> &'static str {
    match extended_code & 0xff {
        ffi::SQLITE_ERROR => "SQLITE_ERROR",
        ffi::SQLITE_INTERNAL => "SQLITE_INTERNAL",
        ffi::SQLITE_PERM => "SQLITE_PERM",
        ffi::SQLITE_ABORT => "SQLITE_ABORT",
        ffi::SQLITE_BUSY => "SQLITE_BUSY",
        ffi::SQLITE_LOCKED => "SQLITE_LOCKED",
        ffi::SQLITE_NOMEM => "SQLITE_NOMEM",
        ffi::SQLITE_READONLY => "SQLITE_READONLY",
        ffi::SQLITE_INTERRUPT => "SQLITE_INTERRUPT",
        ffi::SQLITE_IOERR => "SQLITE_IOERR",
        ffi::SQLITE_CORRUPT => "SQLITE_CORRUPT",
        ffi::SQLITE_NOTFOUND => "SQLITE_NOTFOUND",
        ffi::SQLITE_FULL => "SQLITE_FULL",
        ffi::SQLITE_CANTOPEN => "SQLITE_CANTOPEN",
        ffi::SQLITE_PROTOCOL => "SQLITE_PROTOCOL",
        ffi::SQLITE_EMPTY => "SQLITE_EMPTY",
        ffi::SQLITE_SCHEMA => "SQLITE_SCHEMA",
        ffi::SQLITE_TOOBIG => "SQLITE_TOOBIG",
        ffi::SQLITE_CONSTRAINT => "SQLITE_CONSTRAINT",
        ffi::SQLITE_MISMATCH => "SQLITE_MISMATCH",
        ffi::SQLITE_MISUSE => "SQLITE_MISUSE",
        ffi::SQLITE_NOLFS => "SQLITE_NOLFS",
        ffi::SQLITE_AUTH => "SQLITE_AUTH",
        ffi::SQLITE_FORMAT => "SQLITE_FORMAT",
        ffi::SQLITE_RANGE => "SQLITE_RANGE",
        ffi::SQLITE_NOTADB => "SQLITE_NOTADB",
        _ => "SQLITE_ERROR",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_extended_codes_to_primary_names() {
        assert_eq!(primary_code_name(ffi::SQLITE_BUSY_SNAPSHOT), "SQLITE_BUSY");
        assert_eq!(primary_code_name(ffi::SQLITE_READONLY_DBMOVED), "SQLITE_READONLY");
        assert_eq!(primary_code_name(ffi::SQLITE_NOTADB), "SQLITE_NOTADB");
    }

    #[test]
    fn a_read_only_directory_is_named_as_the_cause() {
        let failure = rusqlite::ffi::Error::new(ffi::SQLITE_READONLY_DIRECTORY);
        let err: StoreError =
            rusqlite::Error::SqliteFailure(failure, Some("attempt to write a readonly database".into())).into();
        assert_eq!(err.code, "SQLITE_READONLY");
        assert!(err.message.starts_with("attempt to write a readonly database ("), "{}", err.message);
        assert!(err.message.contains("directory holding the database cannot be written"), "{}", err.message);
        let plain: StoreError =
            rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(ffi::SQLITE_READONLY), Some("read only".into()))
                .into();
        assert_eq!(plain.message, "read only");
    }

    #[test]
    fn sqlite_failures_keep_sqlite_message() {
        let conn = rusqlite::Connection::open_in_memory().expect("open");
        let err: StoreError = conn.execute("INSERT INTO missing VALUES (1)", []).unwrap_err().into();
        assert_eq!(err.code, "SQLITE_ERROR");
        assert!(err.message.contains("no such table"), "{}", err.message);
    }
}
