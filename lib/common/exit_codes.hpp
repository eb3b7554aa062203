#pragma once
// Every exit code synwatchd uses, in one place: the BSD sysexits values, which service managers
// and scripts recognise (systemd's RestartPreventExitStatus= lists two of them). The man page's
// EXIT STATUS documents each (a test keeps the two in step).
// Thread safety: constants.

namespace synwatch::exit_code {

inline constexpr int kOk = 0;
inline constexpr int kUsage = 64;         // EX_USAGE: bad command line
inline constexpr int kDataError = 65;     // EX_DATAERR: a capture damaged part-way
inline constexpr int kNoInput = 66;       // EX_NOINPUT: a capture cannot be opened
inline constexpr int kUnavailable = 69;   // EX_UNAVAILABLE: top cannot reach the daemon
inline constexpr int kSoftware = 70;      // EX_SOFTWARE: internal error, an output cannot open
inline constexpr int kCantCreate = 73;    // EX_CANTCREAT: evidence directory, spool or secret
inline constexpr int kIoError = 74;       // EX_IOERR: events could not be written out
inline constexpr int kTempFail = 75;      // EX_TEMPFAIL: webhook events left undelivered
inline constexpr int kNoPermission = 77;  // EX_NOPERM: a capability is missing
inline constexpr int kConfig = 78;        // EX_CONFIG: invalid configuration

}  // namespace synwatch::exit_code
