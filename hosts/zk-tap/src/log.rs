//! Logging that compiles to `defmt` on embedded builds, to the `log`
//! facade on Linux, and to nothing without either feature. Arguments use
//! the subset of format syntax both understand (`{}` with plain values).

#[cfg(feature = "defmt")]
macro_rules! tap_info { ($($t:tt)*) => { defmt::info!($($t)*) } }
#[cfg(all(feature = "log", not(feature = "defmt")))]
macro_rules! tap_info { ($($t:tt)*) => { ::log::info!($($t)*) } }
#[cfg(not(any(feature = "log", feature = "defmt")))]
macro_rules! tap_info { ($($t:tt)*) => {{ if false { let _ = ($($t)*); } }} }

#[cfg(feature = "defmt")]
macro_rules! tap_debug { ($($t:tt)*) => { defmt::debug!($($t)*) } }
#[cfg(all(feature = "log", not(feature = "defmt")))]
macro_rules! tap_debug { ($($t:tt)*) => { ::log::debug!($($t)*) } }
#[cfg(not(any(feature = "log", feature = "defmt")))]
macro_rules! tap_debug { ($($t:tt)*) => {{ if false { let _ = ($($t)*); } }} }
