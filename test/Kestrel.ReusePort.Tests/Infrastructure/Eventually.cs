namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>
/// Waits for a condition with a deadline, polling it. Never a fixed sleep: the wait ends as soon as the condition holds,
/// and a condition that never holds fails with what was awaited (and the last error the check threw).
/// </summary>
public static class Eventually
{
    private static readonly TimeSpan s_defaultPollInterval = TimeSpan.FromMilliseconds(50);

    public static Task UntilAsync(Func<bool> condition, TimeSpan timeout, string description, TimeSpan? pollInterval = null) =>
        UntilAsync(() => Task.FromResult(condition()), timeout, description, pollInterval);

    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string description, TimeSpan? pollInterval = null)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var deadline = DateTime.UtcNow + timeout;
        Exception? lastError = null;
        while (true)
        {
            try
            {
                if (await condition())
                {
                    return;
                }

                lastError = null;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                lastError = e;
            }

            if (DateTime.UtcNow >= deadline)
            {
                throw new TimeoutException(
                    $"Timed out after {timeout.TotalSeconds:0.#} s waiting for {description}." +
                    (lastError is null ? string.Empty : $" Last error: {lastError.GetType().Name}: {lastError.Message}"),
                    lastError);
            }

            await Task.Delay(pollInterval ?? s_defaultPollInterval);
        }
    }
}
