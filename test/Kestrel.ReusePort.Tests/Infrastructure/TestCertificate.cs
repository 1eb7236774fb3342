using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>A self-signed certificate for localhost, made per test, for in-process servers and child processes.</summary>
public static class TestCertificate
{
    public static X509Certificate2 Create()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        names.AddIpAddress(System.Net.IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        using var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        return X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>
    /// Writes a new certificate and its key as PEM files into <paramref name="directory"/>, for Kestrel's configuration;
    /// returns the paths and the certificate's thumbprint, for a client to trust that one alone.
    /// </summary>
    public static (string Certificate, string Key, string Thumbprint) WritePem(string directory)
    {
        using var certificate = Create();
        var certificatePath = Path.Join(directory, "cert.pem");
        var keyPath = Path.Join(directory, "key.pem");
        File.WriteAllText(certificatePath, certificate.ExportCertificatePem());
        using var key = certificate.GetRSAPrivateKey()!;
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        return (certificatePath, keyPath, certificate.Thumbprint);
    }
}
