//! `billq query`.

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

use billq_engine::{Dialect, Error, Result, Session};

use crate::args::{Format, QueryArgs};
use crate::print_format;

pub async fn run(args: QueryArgs) -> Result<ExitCode> {
    let text = match (&args.file, &args.sql) {
        (Some(path), _) if path.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| Error::io("<stdin>", e))?;
            s
        }
        (Some(path), _) => std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?,
        (None, Some(sql)) => sql.clone(),
        (None, None) => unreachable!("clap requires SQL or --file"),
    };
    let session = super::session(&args.tables).await?;
    let dialect: Dialect = args.dialect.into();
    if args.explain_rewrite {
        println!("{}", session.rewritten(&text, dialect)?);
        return Ok(ExitCode::SUCCESS);
    }
    if args.format == Format::Parquet && args.output.is_none() {
        return Err(Error::Sql("--format parquet needs -o FILE".into()));
    }
    let mut buf = Vec::new();
    execute(&session, &text, dialect, args.format, &mut buf).await?;
    match &args.output {
        Some(path) => write_atomically(path, &buf)?,
        None => std::io::stdout()
            .lock()
            .write_all(&buf)
            .map_err(|e| Error::io("<stdout>", e))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs one query and writes its result.
pub async fn execute(
    session: &Session,
    text: &str,
    dialect: Dialect,
    format: Format,
    out: &mut Vec<u8>,
) -> Result<()> {
    let df = session.sql(text, dialect).await?;
    let schema = std::sync::Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await?;
    print_format::write(format, &schema, &batches, out)
}

/// Writes `buf` to `path` through a temporary file and a rename.
fn write_atomically(path: &Path, buf: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    temp.write_all(buf).map_err(|e| Error::io(path, e))?;
    temp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}
