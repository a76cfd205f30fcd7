using System.Net;
using AngleSharp.Html.Dom;
using AngleSharp.Html.Parser;
using Microsoft.AspNetCore.Mvc.Testing;

namespace Identity.Server.Tests.Infrastructure;

/// <summary>
/// What a browser does with the server's pages, without a browser: keeps cookies, follows redirects inside the
/// server, reads the HTML the user would see and submits its forms (antiforgery tokens included). It stops at
/// the first redirect that leaves the server, which is where a client would receive its answer.
/// </summary>
public sealed class Browser
{
    readonly HttpClient http;
    readonly HashSet<string> inside;
    readonly List<string> setCookies = [];

    /// <summary>Every Set-Cookie header the browser was sent, in order.</summary>
    public IReadOnlyList<string> SetCookies => setCookies;

    /// <summary>A browser of the in-memory server; give an https <paramref name="baseAddress"/> where Secure cookies must come back.</summary>
    public Browser(WebApplicationFactory<Program> factory, Uri? baseAddress = null)
    {
        var options = new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true };
        if (baseAddress is not null)
            options.BaseAddress = baseAddress;
        http = factory.CreateClient(options);
        inside = [http.BaseAddress!.Authority];
    }

    /// <summary>A browser over real sockets that follows redirects among several servers (a sign-in through a provider).</summary>
    public Browser(Uri home, params Uri[] others)
    {
        http = new HttpClient(new LoopbackCookies()) { BaseAddress = home };
        inside = [home.Authority, .. others.Select(o => o.Authority)];
    }

    /// <summary>
    /// Cookies as Chromium keeps them for local servers: http://localhost and 127.0.0.1 count as secure contexts, so
    /// Secure cookies (OpenIddict's correlation cookie, for one) are stored and sent back over plain http there.
    /// .NET's CookieContainer would drop them.
    /// </summary>
    sealed class LoopbackCookies() : DelegatingHandler(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false })
    {
        readonly CookieContainer jar = new();

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var uri = request.RequestUri!;
            if (jar.GetCookieHeader(AsHttps(uri)) is { Length: > 0 } cookies)
                request.Headers.Add("Cookie", cookies);
            var response = await base.SendAsync(request, cancellationToken);
            if (response.Headers.TryGetValues("Set-Cookie", out var setCookies))
                foreach (var setCookie in setCookies)
                    jar.SetCookies(AsHttps(uri), setCookie);
            return response;
        }

        // The jar is asked as if over https: loopback is a secure context, where Secure cookies belong.
        static Uri AsHttps(Uri uri) => new UriBuilder(uri) { Scheme = Uri.UriSchemeHttps, Port = uri.Port }.Uri;
    }

    public sealed record Page(HttpStatusCode Status, Uri Url, IHtmlDocument? Document, Uri? LeftTo, string Body = "");

    public Task<Page> OpenAsync(string url) => FollowAsync(new HttpRequestMessage(HttpMethod.Get, url));

    /// <summary>Fills the page's form with <paramref name="fields"/> and submits it with the named button.</summary>
    public Task<Page> SubmitAsync(Page page, IDictionary<string, string>? fields = null, string? button = null, string? value = null)
    {
        var form = page.Document?.Forms.FirstOrDefault() ?? throw new InvalidOperationException($"No form on {page.Url}: {page.Document?.Body?.TextContent}");
        // As a browser does, an unchecked box is not sent, unless the test ticks it through the fields.
        var values = form.Elements.OfType<IHtmlInputElement>()
            .Where(i => !string.IsNullOrEmpty(i.Name) && (i.Type is not ("checkbox" or "radio") || i.IsChecked || fields?.ContainsKey(i.Name!) == true))
            .Select(i => new KeyValuePair<string, string>(i.Name!, fields?.TryGetValue(i.Name!, out var v) == true ? v : i.Value))
            .ToList();
        if (button is not null)
            values.Add(new(button, value ?? ""));
        var action = new Uri(page.Url, string.IsNullOrEmpty(form.GetAttribute("action")) ? page.Url.PathAndQuery : form.GetAttribute("action"));
        return FollowAsync(new HttpRequestMessage(HttpMethod.Post, action) { Content = new FormUrlEncodedContent(values) });
    }

    async Task<Page> FollowAsync(HttpRequestMessage request)
    {
        for (var hops = 0; hops < 10; hops++)
        {
            var url = new Uri(http.BaseAddress!, request.RequestUri!);
            using var response = await http.SendAsync(request);
            if (response.Headers.TryGetValues("Set-Cookie", out var cookies))
                setCookies.AddRange(cookies);
            if (response.StatusCode is HttpStatusCode.Found or HttpStatusCode.Redirect or HttpStatusCode.SeeOther or HttpStatusCode.RedirectKeepVerb)
            {
                var location = new Uri(url, response.Headers.Location!);
                if (!inside.Contains(location.Authority))
                    return new Page(response.StatusCode, url, null, location);
                request = new HttpRequestMessage(HttpMethod.Get, location);
                continue;
            }
            var html = await response.Content.ReadAsStringAsync();
            var document = response.Content.Headers.ContentType?.MediaType == "text/html" ? new HtmlParser().ParseDocument(html) : null;
            return new Page(response.StatusCode, url, document, null, html);
        }
        throw new InvalidOperationException("Too many redirects.");
    }

    /// <summary>Signs in on the login page the browser was sent to.</summary>
    public Task<Page> LoginAsync(Page loginPage, string email, string password)
    {
        Assert.Equal("/Account/Login", loginPage.Url.AbsolutePath);
        return SubmitAsync(loginPage, new Dictionary<string, string> { ["Email"] = email, ["Password"] = password });
    }
}
