//! Four-letter words: the admin commands a client sends raw on the client
//! port instead of a `ConnectRequest`.
//!
//! Wire format: the first 4 bytes of the connection are the ASCII command
//! (no length prefix; read by the server as one big-endian int in place of
//! a frame length); `stmk` is followed by an 8-byte big-endian trace mask.
//! The server answers with plain text and closes the connection (`ruok` ->
//! `imok`). Defined in ZooKeeper's
//! `zookeeper-server/src/main/java/org/apache/zookeeper/server/command/FourLetterCommands.java`
//! (3.5+; in 3.4 the same words are constants of `ServerCnxn.java`), and
//! dispatched by `NIOServerCnxn` / `NettyServerCnxn.checkFourLetterWord`.

/// A four-letter admin command (ZooKeeper 3.4 to 3.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FourLetterWord {
    /// `conf`: server configuration.
    Conf,
    /// `cons`: connection/session details.
    Cons,
    /// `crst`: reset connection statistics.
    Crst,
    /// `dirs`: snapshot and log sizes (3.5+).
    Dirs,
    /// `dump`: sessions and ephemerals (leader only).
    Dump,
    /// `envi`: server environment.
    Envi,
    /// `gtmk`: get the trace mask.
    Gtmk,
    /// `hash`: digest history (3.6+).
    Hash,
    /// `isro`: is the server read-only.
    Isro,
    /// `mntr`: monitoring key/values.
    Mntr,
    /// `ruok`: liveness (`imok`).
    Ruok,
    /// `srst`: reset server statistics.
    Srst,
    /// `srvr`: server summary.
    Srvr,
    /// `stat`: server summary and connections.
    Stat,
    /// `stmk`: set the trace mask (followed by an 8-byte mask).
    Stmk,
    /// `wchc`: watches by session.
    Wchc,
    /// `wchp`: watches by path.
    Wchp,
    /// `wchs`: watch summary.
    Wchs,
}

impl FourLetterWord {
    /// Every word, alphabetically.
    pub const ALL: [FourLetterWord; 18] = [
        FourLetterWord::Conf,
        FourLetterWord::Cons,
        FourLetterWord::Crst,
        FourLetterWord::Dirs,
        FourLetterWord::Dump,
        FourLetterWord::Envi,
        FourLetterWord::Gtmk,
        FourLetterWord::Hash,
        FourLetterWord::Isro,
        FourLetterWord::Mntr,
        FourLetterWord::Ruok,
        FourLetterWord::Srst,
        FourLetterWord::Srvr,
        FourLetterWord::Stat,
        FourLetterWord::Stmk,
        FourLetterWord::Wchc,
        FourLetterWord::Wchp,
        FourLetterWord::Wchs,
    ];

    /// The word in the first 4 bytes of `first4` (more bytes are ignored),
    /// if it is one ZooKeeper knows. Case-sensitive, as the server is.
    #[inline]
    pub fn parse(first4: &[u8]) -> Option<Self> {
        let word = first4.first_chunk::<4>()?;
        Self::from_bytes(*word)
    }

    /// The word whose ASCII bytes read as this big-endian value (what a
    /// frame reader sees in place of a length prefix).
    #[inline]
    pub fn from_u32(v: u32) -> Option<Self> {
        Self::from_bytes(v.to_be_bytes())
    }

    #[inline]
    fn from_bytes(word: [u8; 4]) -> Option<Self> {
        Some(match &word {
            b"conf" => FourLetterWord::Conf,
            b"cons" => FourLetterWord::Cons,
            b"crst" => FourLetterWord::Crst,
            b"dirs" => FourLetterWord::Dirs,
            b"dump" => FourLetterWord::Dump,
            b"envi" => FourLetterWord::Envi,
            b"gtmk" => FourLetterWord::Gtmk,
            b"hash" => FourLetterWord::Hash,
            b"isro" => FourLetterWord::Isro,
            b"mntr" => FourLetterWord::Mntr,
            b"ruok" => FourLetterWord::Ruok,
            b"srst" => FourLetterWord::Srst,
            b"srvr" => FourLetterWord::Srvr,
            b"stat" => FourLetterWord::Stat,
            b"stmk" => FourLetterWord::Stmk,
            b"wchc" => FourLetterWord::Wchc,
            b"wchp" => FourLetterWord::Wchp,
            b"wchs" => FourLetterWord::Wchs,
            _ => return None,
        })
    }

    /// The command as sent (`"ruok"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            FourLetterWord::Conf => "conf",
            FourLetterWord::Cons => "cons",
            FourLetterWord::Crst => "crst",
            FourLetterWord::Dirs => "dirs",
            FourLetterWord::Dump => "dump",
            FourLetterWord::Envi => "envi",
            FourLetterWord::Gtmk => "gtmk",
            FourLetterWord::Hash => "hash",
            FourLetterWord::Isro => "isro",
            FourLetterWord::Mntr => "mntr",
            FourLetterWord::Ruok => "ruok",
            FourLetterWord::Srst => "srst",
            FourLetterWord::Srvr => "srvr",
            FourLetterWord::Stat => "stat",
            FourLetterWord::Stmk => "stmk",
            FourLetterWord::Wchc => "wchc",
            FourLetterWord::Wchp => "wchp",
            FourLetterWord::Wchs => "wchs",
        }
    }

    /// Bytes the client sends after the word: 8 (the trace mask) for
    /// `stmk`, 0 otherwise.
    #[inline]
    pub const fn argument_len(self) -> usize {
        match self {
            FourLetterWord::Stmk => 8,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_round_trips() {
        for w in FourLetterWord::ALL {
            assert_eq!(FourLetterWord::parse(w.as_str().as_bytes()), Some(w));
            let v = u32::from_be_bytes(*w.as_str().as_bytes().first_chunk::<4>().unwrap());
            assert_eq!(FourLetterWord::from_u32(v), Some(w));
        }
        let mut sorted = FourLetterWord::ALL;
        sorted.sort_by_key(|w| w.as_str());
        assert_eq!(sorted, FourLetterWord::ALL);
    }

    #[test]
    fn parses_from_a_longer_buffer_and_rejects_others() {
        assert_eq!(FourLetterWord::parse(b"ruok\n"), Some(FourLetterWord::Ruok));
        assert_eq!(
            FourLetterWord::parse(b"stmk\0\0\0\0\0\0\0\x01"),
            Some(FourLetterWord::Stmk)
        );
        assert_eq!(FourLetterWord::Stmk.argument_len(), 8);
        assert_eq!(FourLetterWord::Mntr.argument_len(), 0);
        assert_eq!(FourLetterWord::parse(b"RUOK"), None);
        assert_eq!(FourLetterWord::parse(b"ruo"), None);
        assert_eq!(FourLetterWord::parse(b""), None);
        assert_eq!(FourLetterWord::parse(b"kill"), None);
        // A frame length is not a word.
        assert_eq!(FourLetterWord::parse(&[0, 0, 0, 45]), None);
        assert_eq!(FourLetterWord::from_u32(44), None);
    }
}
