//! Telling a full disk from other I/O failures, through error chains.

/// True if `e`, or an error it was caused by (its `source` chain), is an
/// I/O error for a full disk or quota (`ENOSPC`, `EDQUOT`): the failure
/// that freeing space and restarting recovers from, which an operator
/// should be told in those words.
pub fn is_disk_full(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            )
        {
            return true;
        }
        next = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("writing: {0}")]
    struct Wrapper(#[source] std::io::Error);

    #[test]
    fn a_full_disk_is_found_anywhere_in_the_chain() {
        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        assert!(is_disk_full(&full));
        assert!(is_disk_full(&Wrapper(full)));
        let quota = std::io::Error::from(std::io::ErrorKind::QuotaExceeded);
        assert!(is_disk_full(&Wrapper(quota)));
        let other = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(!is_disk_full(&Wrapper(other)));
    }
}
