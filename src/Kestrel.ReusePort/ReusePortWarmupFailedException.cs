using System;

namespace Kestrel.ReusePort;

/// <summary>
/// The start of an instance whose warm-up failed while another instance serves its port: it took nothing from the
/// port, and the host's start fails with this exception so that the process exits non-zero and the deploy is seen to
/// fail (see <see cref="ReusePortWarmupOptions.ServeOnFailure"/>).
/// </summary>
/// <remarks>
/// Left unhandled, it ends the process as any failed start does (the runtime reports it and aborts). An app with its
/// own <c>Main</c> can catch it around <c>Run</c> to choose its exit code.
/// </remarks>
public sealed class ReusePortWarmupFailedException : Exception
{
    /// <summary>Creates the exception with a default message.</summary>
    public ReusePortWarmupFailedException()
        : base("The warm-up failed while a running instance serves the port; this instance did not take it.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What failed, and what was left alone.</param>
    public ReusePortWarmupFailedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    /// <param name="message">What failed, and what was left alone.</param>
    /// <param name="innerException">The cause.</param>
    public ReusePortWarmupFailedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
