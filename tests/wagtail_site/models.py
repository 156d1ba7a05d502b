"""Two page types of the test site."""

from wagtail.models import Page


class HomePage(Page):
    pass


class BlogPage(Page):
    pass
