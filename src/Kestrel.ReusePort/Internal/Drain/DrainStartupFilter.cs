using System;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;

namespace Kestrel.ReusePort.Internal.Drain;

/// <summary>Puts the <see cref="DrainMiddleware"/> first in the app's pipeline, before any of the app's own middleware.</summary>
internal sealed class DrainStartupFilter : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        app.UseMiddleware<DrainMiddleware>();
        next(app);
    };
}
