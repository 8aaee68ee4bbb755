"""The customer preference centre: a page reached by a signed, expiring link.

    tokens    sign and verify the links (pure)
    state     the customers' profiles and consent, followed from the compacted topics
    choices   what a submitted form changes: ConsentChange records and a new CustomerProfile (pure)
    texts     the page's words in English, Hebrew, Dutch, Polish and Belarusian; the disclosure
    page      the HTML, rendered in a sandboxed, autoescaping Jinja2 environment (pure)
    links     the signed addresses: a preference page, a marketing e-mail's unsubscribe and preference links
    web       the aiohttp handlers: show, save, refuse
    unsubscribe  an e-mail's unsubscribe link: RFC 8058 one-click POST, a confirmation page for a browser
    service   the process: follower + web server until SIGINT/SIGTERM
"""
