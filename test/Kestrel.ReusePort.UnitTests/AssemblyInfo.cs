using System.Runtime.Versioning;

// The library's subject is Linux SO_REUSEPORT; these tests read Linux's /proc formats and Unix file modes.
[assembly: SupportedOSPlatform("linux")]
