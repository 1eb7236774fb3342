using System.Runtime.Versioning;

// The transport's subject is Linux SO_REUSEPORT; the tests read /proc and use Linux tools and signals.
[assembly: SupportedOSPlatform("linux")]
