// A reverse proxy to one Kestrel (--Backend http://127.0.0.1:PORT), configured like compare.sh's nginx-proxy: HTTP/1.1
// to the backend over pooled keep-alive connections (SocketsHttpHandler's pool, no limit of requests per connection),
// the client's Host header passed on, no X-Forwarded-* headers added (nginx adds none unless told to). A blue/green
// deploy behind it changes the destination: YARP takes a new configuration without a restart.
using System.Net;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Transforms;

var builder = WebApplication.CreateBuilder(args);
var backend = builder.Configuration["Backend"] ?? throw new InvalidOperationException("--Backend http://127.0.0.1:PORT is required.");

RouteConfig[] routes =
[
    new RouteConfig { RouteId = "all", ClusterId = "kestrel", Match = new RouteMatch { Path = "{**path}" } }
        .WithTransformUseOriginalHostHeader()
        .WithTransformXForwarded(xDefault: ForwardedTransformActions.Off),
];
ClusterConfig[] clusters =
[
    new ClusterConfig
    {
        ClusterId = "kestrel",
        Destinations = new Dictionary<string, DestinationConfig> { ["blue"] = new() { Address = backend } },
        HttpRequest = new ForwarderRequestConfig { Version = HttpVersion.Version11, VersionPolicy = HttpVersionPolicy.RequestVersionExact },
    },
];
builder.Services.AddReverseProxy().LoadFromMemory(routes, clusters);

var app = builder.Build();
app.MapReverseProxy();
app.Run();
